"""History: the per-epoch metrics of a training run, and their learning-curve plot; imports errors only."""
from __future__ import annotations

import numbers
from collections.abc import Mapping

from ..errors import TrainingError


class History(Mapping):
    """Per-epoch metrics of ``fit``: a read-only mapping ``name -> list of floats``, one per epoch.

    Keys: ``loss`` (mean training loss of the epoch's steps), and, where
    measured, ``accuracy`` and ``errors`` (0-1 error count) on the training set
    at the end of the epoch, and ``val_loss``, ``val_accuracy``,
    ``val_errors`` on the validation set. ``stopped`` says why ``fit`` stopped
    before its last epoch (a callback, early stopping), else None; ``state``
    is the optimizer state ``fit`` trained with (the one it made when given
    none).
    """

    def __init__(self, values: Mapping | None = None):
        self._values = {}
        for name, column in (values or {}).items():
            if not isinstance(name, str):
                raise TrainingError(f"history: metric names must be str, got {name!r}")
            self._values[name] = [_number(name, v) for v in column]
        self.stopped = None
        self.state = None

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self._values.get("loss", ()))

    def append(self, record: Mapping):
        """Add one epoch's ``{metric: value}``."""
        for name, value in record.items():
            self._values.setdefault(name, []).append(_number(name, value))

    def last(self) -> dict:
        """The last epoch's metrics, ``{name: value}``."""
        return {name: column[-1] for name, column in self._values.items() if column}

    def plot(self, path=None, *, title: str | None = None):
        """Learning curves: loss per epoch (train and validation), and accuracy where measured.

        Needs matplotlib (``pip install "graphcomp[plot]"``). Draws on a new
        ``matplotlib.figure.Figure`` (no pyplot, so no window and no global
        state), saves it to ``path`` if given, and returns it.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ModuleNotFoundError('History.plot needs matplotlib: pip install "graphcomp[plot]"') from None
        panels = [("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy"))]
        panels = [(label, [k for k in keys if self._values.get(k)]) for label, keys in panels]
        panels = [(label, keys) for label, keys in panels if keys]
        if not panels:
            raise TrainingError("history: nothing to plot (no loss or accuracy recorded)")
        fig = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
        for ax, (label, keys) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
            for key in keys:
                epochs = range(1, len(self._values[key]) + 1)
                ax.plot(epochs, self._values[key], marker="o", markersize=3,
                        label="validation" if key.startswith("val_") else "training")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig

    def __repr__(self):
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items())
        return f"<History {self.epochs} epochs{': ' + last if last else ''}>"


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrainingError(f"history: metric {name!r} must hold numbers, got {type(value).__name__} {value!r}")
    return float(value)
