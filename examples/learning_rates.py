"""Too small, good, too large: the same network trained with three learning rates, one loss curve each.

The founding article's picture, made real: plain SGD on the digits MLP of
``train_digits.py``, from the same initial params and the same minibatches,
with a learning rate that is too small (the loss creeps down), a good one (it
falls fast) and one too large (each step overshoots, and the loss blows up
until it is no longer a number, which ``gc.fit`` stops at with a
DivergenceError). The figure is written to ``docs/images/learning_rates.png``
unless ``--out`` says otherwise.

Run it from anywhere: ``python examples/learning_rates.py [--out PNG]``.
"""

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from train_digits import build_network, load_data

import graphcomp as gc

RATES = [(0.001, "too small"), (0.1, "good"), (2.0, "too large")]
EPOCHS = 20
BATCH = 32
SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "learning_rates.png"


def train(lr, data):
    """Per-epoch training losses of SGD(lr), and the epoch where the loss became NaN/Inf (or None)."""
    loss, params = build_network(data["x"].shape[1])
    step = gc.compile_training(loss, params, optimizer=gc.optim.SGD(lr))
    values = gc.init.initialize(step, seed=SEED, overrides={"W1": "he_normal"})
    with np.errstate(over="ignore", invalid="ignore"):     # the too-large rate overflows on purpose
        try:
            history = gc.fit(step, values, data, epochs=EPOCHS, batch_size=BATCH, seed=SEED, progress=False)
        except gc.DivergenceError as e:
            return e.history["loss"], e.epoch
    return history["loss"], None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the figure (default: {DEFAULT_OUT})")
    args = parser.parse_args()
    X_train, y_train, _, _ = load_data(np.random.default_rng(SEED))
    data = dict(x=X_train, y=y_train)

    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for lr, verdict in RATES:
        losses, diverged = train(lr, data)
        label = f"lr = {lr} ({verdict})"
        if diverged is not None:
            label += f": NaN/Inf in epoch {diverged}"
        ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3, label=label)
        print(f"{label:42s} loss per epoch: " + " ".join(f"{v:.3g}" for v in losses[:6])
              + (" ..." if len(losses) > 6 else ""))
    ax.set_yscale("log")
    ax.set_ylim(1e-2, 1e4)
    ax.set_xlim(0.5, EPOCHS + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean NLL, log scale)")
    ax.set_title("The same MLP on digits, plain SGD, three learning rates")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
