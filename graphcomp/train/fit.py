"""gc.fit: minibatch training of a compiled step, with validation, metrics, callbacks, checkpoints and a
progress bar; imports the training step, checkpoints and history (and tqdm).

fit checks every value once, up front (params, state, each dataset as a
whole: shapes, dtypes, label ranges, rows, NaN/Inf), and again after
callbacks, which may replace arrays; in between it calls the generated
``train_step`` directly on minibatches taken from the checked arrays, so no
step pays for checks its data already passed.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import DivergenceError, FeedError, TrainingError
from .checkpoint import save_checkpoint
from .history import History
from .optimized import OptimizerStep

METRICS = ("accuracy", "errors")
_SHOWN = ("loss", "val_loss", "val_accuracy")        # what the progress bar shows of each epoch


def fit(step: OptimizerStep, params: dict[str, np.ndarray], data: Mapping, *, epochs: int = 1,
        batch_size: int = 32, validation: Mapping | None = None, validation_split: float | None = None,
        seed: int = 0, shuffle: bool = True, state: dict | None = None, history: History | None = None,
        metrics: Sequence[str] | None = None, callbacks: Sequence[Callable] = (), checkpoint=None,
        progress: bool = True) -> History:
    """Train ``params`` in place on minibatches of ``data``, epoch by epoch.

    Each epoch visits every example once, in an order drawn from a generator
    seeded with ``(seed, epoch)``: a run is reproducible bit for bit, and a run
    resumed from a checkpoint (``state=`` and ``history=`` from
    ``load_checkpoint``) continues exactly as the uninterrupted one would.

    Args:
        step: a step compiled with an optimizer
            (``compile_training(loss, params, optimizer=...)``).
        params: ``{name: array}``, updated in place.
        data: ``{input name: array}`` with one row per example (first dim),
            for every data input of the step.
        epochs: the total number of epochs; a resumed run (``history`` with
            k epochs) runs epochs k+1 .. ``epochs``.
        batch_size: examples per step (the last batch of an epoch may be smaller).
        validation: a dataset like ``data`` to measure after each epoch.
        validation_split: or the fraction of ``data`` to hold out for it (the
            last rows, before any shuffling).
        seed: seeds the order of examples.
        shuffle: False visits examples in order.
        state: the optimizer state to continue from (updated in place); None
            starts a fresh one, available as ``history.state``.
        history: the History to continue (from a checkpoint); None starts one.
        metrics: measured on the training set at the end of each epoch and on
            the validation set: ``"accuracy"`` and ``"errors"`` (the 0-1 error
            count). Default: both if the loss is a classification loss
            (``step.predict`` exists), else none.
        callbacks: called after each epoch as ``callback(epoch, history,
            params, state)``; a true result stops training (``EarlyStopping``
            is one). They may change params and state; fit checks them again.
        checkpoint: a path: after each epoch the run is saved there
            atomically, so the file always holds the last good epoch.
        progress: show a tqdm progress bar (it stays quiet when stderr is not
            a terminal).

    Returns:
        The History, one value per epoch for each metric: ``loss``,
        ``accuracy``, ``errors``, and ``val_loss``, ``val_accuracy``,
        ``val_errors`` with a validation set.

    Raises:
        FeedError: bad data: a missing or unknown input, inputs with different
            numbers of rows, NaN or Inf (naming the input, row and batch),
            labels out of range, a wrong shape or dtype; or bad params or state
            (missing, a Python list, read-only, wrong shape or dtype).
        TrainingError: bad arguments, or a step without an optimizer.
        DivergenceError: the loss became NaN or Inf; params and state are back
            at their values after the last finished epoch (the values in the
            checkpoint), and the error's ``history`` holds the epochs run.

    Example:
        >>> history = gc.fit(step, params, data=dict(x=X, y=Y), epochs=20, batch_size=64,
        ...                  validation=dict(x=Xv, y=Yv), seed=0)
        >>> history["val_accuracy"][-1]
    """
    if not isinstance(step, OptimizerStep):
        raise TrainingError(f"fit needs a step compiled with an optimizer, e.g. compile_training(loss, params, "
                            f"optimizer=gc.optim.SGD(0.1)); got {type(step).__name__}")
    _check_int("epochs", epochs, 0)
    _check_int("batch_size", batch_size, 1)
    _check_int("seed", seed, 0)
    metrics = _metrics(step, metrics)
    if state is None:
        state = step.init_state(params)
    step._held.check({}, params, state)
    history = History() if history is None else history
    if not isinstance(history, History):
        raise TrainingError(f"fit: history must be a gc.History (load_checkpoint gives one), "
                            f"got {type(history).__name__}")
    history.state = state
    train = _dataset(step, data, "data")
    if validation_split is not None:
        if validation is not None:
            raise TrainingError("fit: give validation or validation_split, not both")
        train, validation = _split(step, train, validation_split)
    elif validation is not None:
        validation = _dataset(step, validation, "validation")
    n = _rows(train)
    first_epoch = history.epochs + 1
    for name, value in zip(step.inputs, train.values()):
        _finite(name, "data", value, lambda row: f" (batch {_batch_of(row, seed, first_epoch, n, batch_size, shuffle)}"
                                                 f" of epoch {first_epoch})")
    if validation is not None:
        for name, value in validation.items():
            _finite(name, "validation", value, lambda row: "")

    run = step._train_step
    values = list(train.values())
    batches = math.ceil(n / batch_size)
    snapshot = _copy(step.params, params, state)
    with tqdm(total=max(epochs - history.epochs, 0) * batches, disable=None if progress else True, unit="step",
              dynamic_ncols=True) as bar:
        for epoch in range(first_epoch, epochs + 1):
            bar.set_description(f"epoch {epoch}/{epochs}")
            order = _order(seed, epoch, n, shuffle)
            total = 0.0
            for b in range(batches):
                rows = order[b * batch_size:(b + 1) * batch_size]
                loss = run(params, state, *(v[rows] for v in values))
                if not math.isfinite(loss):
                    _restore(params, state, snapshot)
                    where = (f"their values after epoch {epoch - 1}"
                             + (" (as in the checkpoint)" if checkpoint is not None else "")
                             if epoch > 1 else "the values fit started from")
                    error = DivergenceError(f"fit: the loss became {float(loss)} at epoch {epoch}, step {b + 1} of "
                                            f"{batches}; params and state are back at {where}. Try a smaller "
                                            "learning rate, or clip_norm= on the optimizer")
                    error.epoch, error.step, error.history = epoch, b + 1, history
                    raise error
                total += float(loss) * len(rows)
                bar.update()
            record = {"loss": total / n, **_measure(step, params, train, metrics, "", loss=False)}
            if validation is not None:
                record.update(_measure(step, params, validation, metrics, "val_"))
            history.append(record)
            bar.set_postfix({k: f"{record[k]:.4g}" for k in _SHOWN if k in record}, refresh=False)
            stop = [cb for cb in callbacks if cb(epoch, history, params, state)]
            step._held.check({}, params, state)
            if checkpoint is not None:
                save_checkpoint(checkpoint, params, state, history)
            snapshot = _copy(step.params, params, state)
            if stop:
                history.stopped = (getattr(stop[0], "reason", None)
                                   or f"{stop[0]!r} stopped training after epoch {epoch}")
                break
    return history


class EarlyStopping:
    """A ``fit`` callback that stops when ``monitor`` has not improved for ``patience`` epochs.

    Improving means falling by more than ``min_delta`` (rising, for a metric
    whose name holds "accuracy"). With ``restore_best`` the params and state
    are put back to their values at the best epoch when it stops.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True):
        _check_int("patience", patience, 1)
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise TrainingError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.patience = monitor, patience
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.sign = -1.0 if "accuracy" in monitor else 1.0      # minimize sign * value
        self.best, self.best_epoch, self.wait, self.reason = math.inf, None, 0, None
        self._best_values = None

    def __call__(self, epoch, history, params, state):
        if self.monitor not in history:
            raise TrainingError(f"EarlyStopping: the history has no {self.monitor!r} (it has {sorted(history)}); "
                                "give fit a validation set, or monitor 'loss'")
        value = self.sign * history[self.monitor][-1]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_values = _copy(params, params, state)
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        restored = ""
        if self.restore_best and self._best_values is not None:
            _restore(params, state, self._best_values)
            restored = "; params and state restored to that epoch"
        self.reason = (f"early stopping: {self.monitor} did not improve for {self.patience} epochs after epoch "
                       f"{self.best_epoch} ({self.sign * self.best:.6g}){restored}")
        return True

    def __repr__(self):
        return f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta})"


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise TrainingError(f"fit: {name} must be an int >= {low}, got {value!r}")


def _metrics(step, metrics):
    if metrics is None:
        return METRICS if step.scores is not None else ()
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise TrainingError(f"fit: unknown metric {unknown[0]!r}; expected some of {list(METRICS)}")
    if metrics and step.scores is None:
        raise TrainingError(f"fit: {metrics[0]!r} needs a classification loss (nll_loss, cross_entropy of fed "
                            "labels); this step's loss has none")
    return metrics


def _dataset(step, data, what):
    """``{input: array}`` in the step's input order, checked as a whole (rows, shapes, dtypes, label ranges)."""
    if not isinstance(data, Mapping):
        raise FeedError(f"fit: {what} must be a dict of input name -> array, got {type(data).__name__}")
    data = dict(data)
    rows = {}
    for name, value in data.items():
        shape = np.shape(value)
        if not shape:
            raise FeedError(f"fit: {what} {name!r} is a scalar; fit takes every input in rows (its first dim)")
        rows[name] = shape[0]
    if len(set(rows.values())) > 1:
        (a, na), *_, (b, nb) = sorted(rows.items(), key=lambda item: -item[1])
        raise FeedError(f"fit: {what} {a!r} has {na} rows but {b!r} has {nb}; every input needs one row per example")
    if rows and not next(iter(rows.values())):
        raise FeedError(f"fit: {what} has no rows")
    checked = step._data.check(data)
    return dict(zip(step.inputs, checked, strict=True))


def _rows(dataset):
    return len(next(iter(dataset.values())))


def _split(step, train, fraction):
    """The first and last rows of ``train``, the last ``fraction`` of them held out for validation."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise TrainingError(f"fit: validation_split must be a fraction in (0, 1), got {fraction!r}")
    n = _rows(train)
    held = int(round(n * fraction))
    if not 0 < held < n:
        raise TrainingError(f"fit: validation_split={fraction} of {n} rows leaves {held} for validation and "
                            f"{n - held} for training; both need at least one")
    return ({k: v[:n - held] for k, v in train.items()}, {k: v[n - held:] for k, v in train.items()})


def _finite(name, what, value, where):
    """FeedError naming the first row of ``value`` holding NaN or Inf (and ``where(row)``: its batch)."""
    if value.dtype.kind not in "fc" or np.isfinite(value).all():
        return
    bad_rows = ~np.isfinite(value.reshape(len(value), -1)).all(axis=1)
    row = int(np.flatnonzero(bad_rows)[0])
    bad = value[row][~np.isfinite(value[row])].flat[0] if value.ndim > 1 else value[row]
    raise FeedError(f"fit: {what} {name!r} holds {bad} in row {row}{where(row)}; fit needs finite data")


def _order(seed, epoch, n, shuffle):
    """The order of the examples in ``epoch``: the same for the same seed and epoch, resumed or not."""
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def _batch_of(row, seed, epoch, n, batch_size, shuffle):
    """The 1-based batch of ``epoch`` that visits ``row``."""
    return int(np.flatnonzero(_order(seed, epoch, n, shuffle) == row)[0]) // batch_size + 1


def _measure(step, params, dataset, metrics, prefix, loss=True):
    """``{prefix + metric: value}`` of the whole ``dataset``, by the generated forward and predict."""
    found = {}
    if loss:
        found[f"{prefix}loss"] = float(step.module.forward(*(params[p] for p in step.params),
                                                           *dataset.values())[0])
    if metrics:
        scores = step.module.predict(*(params[a] if a in step.params else dataset[a] for a in step._predict_args))
        labels = dataset[step.labels]
        wrong = int(np.count_nonzero(np.argmax(scores, axis=1) != labels))
        if "accuracy" in metrics:
            found[f"{prefix}accuracy"] = 1.0 - wrong / len(labels)
        if "errors" in metrics:
            found[f"{prefix}errors"] = float(wrong)
    return found


def _copy(names, params, state):
    """Copies of the ``names`` of params and of the whole state."""
    return {k: params[k].copy() for k in names}, {k: v.copy() for k, v in state.items()}


def _restore(params, state, saved):
    """Write saved values back into the same arrays (callers hold them)."""
    for live, kept in zip((params, state), saved):
        for k, v in kept.items():
            np.copyto(live[k], v)
