"""Time how graphcomp's compile phases grow with network depth, and how much of that is Python's cyclic GC.

For MLPs of 10, 50, 200 and 1000 hidden layers (each linear 32 -> 32 + relu,
then a linear 32 -> 10 output, log_softmax and mean nll_loss) it times three
phases separately, taking the median of a few repeats:

- build: declaring the graph,
- grad: ``gc.grad(loss, params)`` on that graph,
- compile_training: ``gc.compile_training(loss, params)`` on a fresh graph
  (so it does not see the nodes the grad phase added).

Each phase starts right after a full ``gc.collect()``, so garbage left by
earlier phases is not charged to it, and a ``gc.callbacks`` hook adds up the
time the cyclic garbage collector runs during the phase.

It prints seconds per phase, milliseconds per layer and the GC's share, then
time(1000) / time(200) per phase, with and without the GC's time: linear
growth gives 5x.

Usage: ``python benchmarks/bench_compile.py [--quick]``.
"""

import argparse
import gc as pygc  # Python's garbage collector; ``gc`` is graphcomp here, as in its docs
import statistics
import time

import graphcomp as gc

WIDTH = 32
CLASSES = 10
DEPTHS = [10, 50, 200, 1000]
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


class GcClock:
    """Adds up the seconds the cyclic garbage collector runs; register it in ``gc.callbacks``."""

    def __init__(self):
        self.seconds = 0.0
        self.started = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.started


def timed(fn, *args, **kwargs):
    """(seconds, seconds of them in the cyclic GC, result) of one call, after a full collection."""
    pygc.collect()
    clock = GcClock()
    pygc.callbacks.append(clock)
    try:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - started
    finally:
        pygc.callbacks.remove(clock)
    return seconds, clock.seconds, result


def measure(depth):
    """(seconds, GC seconds) of each phase of one repeat at this depth."""
    t_build, gc_build, (loss, params) = timed(build_mlp, depth)
    t_grad, gc_grad, _ = timed(gc.grad, loss, params)
    loss, params = build_mlp(depth)
    t_compile, gc_compile, _ = timed(gc.compile_training, loss, params=params)
    return dict(zip(PHASES, ((t_build, gc_build), (t_grad, gc_grad), (t_compile, gc_compile))))


def summarize(runs):
    """Per phase: (median seconds, median GC seconds, median seconds outside the GC) over runs."""
    summary = {}
    for phase in PHASES:
        seconds = [run[phase][0] for run in runs]
        in_gc = [run[phase][1] for run in runs]
        summary[phase] = (statistics.median(seconds), statistics.median(in_gc),
                          statistics.median(t - g for t, g in zip(seconds, in_gc)))
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per depth: a smoke run")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5

    print(f"median of {repeats} repeat(s); seconds per phase, milliseconds per layer in brackets, "
          "share of the time spent in Python's cyclic GC")
    print(f"{'layers':>8} " + " ".join(f"{phase:>31}" for phase in PHASES))
    summaries = {}
    for depth in DEPTHS:
        summaries[depth] = summary = summarize([measure(depth) for _ in range(repeats)])
        cells = [f"{t:>10.4f} s ({t / depth * 1e3:>6.3f} ms) gc {g / t:>3.0%}"
                 for t, g, _ in summary.values()]
        print(f"{depth:>8} " + " ".join(f"{cell:>31}" for cell in cells))

    mid, deep = DEPTHS[-2:]
    label = f"{deep}/{mid}"
    total = " ".join(f"{summaries[deep][p][0] / summaries[mid][p][0]:>30.2f}x" for p in PHASES)
    no_gc = " ".join(f"{summaries[deep][p][2] / summaries[mid][p][2]:>30.2f}x" for p in PHASES)
    print(f"{label:>8} {total}   (linear growth: {deep / mid:g}x)")
    print(f"{'no GC':>8} {no_gc}   (the same, time outside the cyclic GC)")


if __name__ == "__main__":
    main()
