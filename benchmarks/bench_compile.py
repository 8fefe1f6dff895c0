"""Time how graphcomp's compile phases grow with network depth.

For MLPs of 10, 50 and 200 hidden layers (each linear 32 -> 32 + relu, then a
linear 32 -> 10 output, log_softmax and mean nll_loss) it times three phases
separately, taking the median of a few repeats:

- build: declaring the graph,
- grad: ``gc.grad(loss, params)`` on that graph,
- compile_training: ``gc.compile_training(loss, params)`` on a fresh graph
  (so it does not see the nodes the grad phase added).

It prints seconds per phase and per layer, then time(200) / time(50) per phase:
linear growth gives 4x.

Usage: ``python benchmarks/bench_compile.py [--quick]``.
"""

import argparse
import statistics
import time

import graphcomp as gc

WIDTH = 32
CLASSES = 10
DEPTHS = [10, 50, 200]
PHASES = ["build", "grad", "compile_training"]


def build_mlp(depth):
    """Declare a depth-layer relu MLP; return (loss, params)."""
    g = gc.Graph(f"mlp{depth}")
    h = g.input("x", (None, WIDTH))
    y = g.input("y", (None,), dtype="int64")
    params = []
    for i in range(depth):
        W = g.param(f"W{i}", (WIDTH, WIDTH))
        b = g.param(f"b{i}", (WIDTH,))
        h = gc.relu(h @ W + b, name=f"h{i}")
        params += [W, b]
    W_out = g.param("W_out", (WIDTH, CLASSES))
    b_out = g.param("b_out", (CLASSES,))
    logits = gc.add(h @ W_out, b_out, name="logits")
    loss = gc.nll_loss(gc.log_softmax(logits, axis=-1), y, name="loss")
    return loss, params + [W_out, b_out]


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def measure(depth):
    """Seconds for each phase of one repeat at this depth."""
    t_build, (loss, params) = timed(build_mlp, depth)
    t_grad, _ = timed(gc.grad, loss, params)
    loss, params = build_mlp(depth)
    t_compile, _ = timed(gc.compile_training, loss, params=params)
    return dict(zip(PHASES, (t_build, t_grad, t_compile)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per depth: a smoke run")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5

    print(f"median of {repeats} repeat(s); seconds per phase, milliseconds per layer in brackets")
    print(f"{'layers':>6} " + " ".join(f"{phase:>24}" for phase in PHASES))
    medians = {}
    for depth in DEPTHS:
        runs = [measure(depth) for _ in range(repeats)]
        medians[depth] = {phase: statistics.median(run[phase] for run in runs) for phase in PHASES}
        cells = [f"{medians[depth][p]:>10.4f} s ({medians[depth][p] / depth * 1e3:>6.3f} ms)" for p in PHASES]
        print(f"{depth:>6} " + " ".join(f"{cell:>24}" for cell in cells))

    mid, deep = DEPTHS[-2:]
    ratios = " ".join(f"{medians[deep][p] / medians[mid][p]:>23.2f}x" for p in PHASES)
    print(f"{f'{deep}/{mid}':>6} {ratios}   (linear growth: {deep / mid:g}x)")


if __name__ == "__main__":
    main()
