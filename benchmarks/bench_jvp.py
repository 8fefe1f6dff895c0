"""Time graphcomp's compiled forward-mode derivative (gc.jvp) against the compiled forward pass.

The network is an MLP with a tanh hidden layer whose output is the logits (no
loss): logits = tanh(x @ W1 + b1) @ W2 + b2. The tangents tW1, tb1, tW2, tb2
are inputs of the same graph. For each size the script compiles three
functions: the forward pass ``gc.compile(logits)``, the directional
derivative ``gc.compile(jvp)`` with ``jvp = gc.jvp(logits, [W1, b1, W2, b2],
[tW1, tb1, tW2, tb2])``, and both in one function ``gc.compile([logits,
jvp])``. It first checks the jvp against central differences of the forward
function along the tangents (and that the combined function agrees with the
other two), then times the three interleaved: each round times a loop of k
calls of each, rotating which goes first. It prints the median time per call
of each, the ratios jvp / forward and both / forward of the medians, and the
quartiles of the per-round ratios as a measure of noise. All in float64, which
the central differences need.

Usage: ``python benchmarks/bench_jvp.py [--quick]``.
"""

import argparse
import platform
import statistics
import time

import numpy as np

import graphcomp as gc

# (inputs, hidden, classes, batch, rounds)
SIZES = [
    (64, 32, 10, 128, 50),
    (784, 256, 10, 128, 50),
]
PRIMALS = ["W1", "b1", "W2", "b2"]
MIN_LOOP_SECONDS = 0.1  # k is chosen so one timed loop of the forward pass takes at least this long
EPS = 1e-6              # central-difference step along the tangent
RTOL = 1e-6             # jvp vs central differences, relative to the largest difference


def compile_functions(n_in, n_hidden, n_out):
    """Declare the MLP and its jvp; return the compiled forward, jvp and combined functions."""
    g = gc.Graph("mlp_jvp", dtype="float64")
    x = g.input("x", (None, n_in))
    W1 = g.param("W1", (n_in, n_hidden))
    b1 = g.param("b1", (n_hidden,))
    W2 = g.param("W2", (n_hidden, n_out))
    b2 = g.param("b2", (n_out,))
    h = gc.tanh(x @ W1 + b1, name="h")
    logits = gc.add(h @ W2, b2, name="logits")
    primals = [W1, b1, W2, b2]
    jvp = gc.jvp(logits, primals, [g.input(f"t{p.name}", p.shape) for p in primals])
    return gc.compile(logits), gc.compile(jvp), gc.compile([logits, jvp])


def make_feeds(n_in, n_hidden, n_out, batch, rng):
    """Random params (weights scaled by 1/sqrt(fan-in)), same-shaped tangents and a batch, by name."""
    feeds = {
        "x": rng.normal(size=(batch, n_in)),
        "W1": rng.normal(0.0, np.sqrt(1.0 / n_in), (n_in, n_hidden)),
        "b1": rng.normal(0.0, 0.1, n_hidden),
        "W2": rng.normal(0.0, np.sqrt(1.0 / n_hidden), (n_hidden, n_out)),
        "b2": rng.normal(0.0, 0.1, n_out),
    }
    feeds.update({f"t{name}": rng.normal(size=feeds[name].shape) for name in PRIMALS})
    return feeds


def call(fn, feeds):
    """Call a compiled function with the feeds it takes."""
    return fn(**{name: feeds[name] for name in fn.inputs})


def moved(feeds, step):
    """The feeds with each primal moved by step times its tangent."""
    out = dict(feeds)
    out.update((name, feeds[name] + step * feeds[f"t{name}"]) for name in PRIMALS)
    return out


def check_jvp(forward, jvp, both, feeds):
    """Raise RuntimeError unless jvp matches central differences and the combined function agrees."""
    expected = (call(forward, moved(feeds, EPS)) - call(forward, moved(feeds, -EPS))) / (2 * EPS)
    got = call(jvp, feeds)
    error = np.abs(got - expected).max()
    if not error <= RTOL * np.abs(expected).max():     # not <=: a NaN fails too
        raise RuntimeError(f"jvp differs from central differences by {error:.3g} "
                           f"(largest difference {np.abs(expected).max():.3g})")
    logits, tangent = call(both, feeds)
    if not (np.allclose(logits, call(forward, feeds), rtol=1e-12, atol=0)
            and np.allclose(tangent, got, rtol=1e-12, atol=1e-15)):
        raise RuntimeError("compile([logits, jvp]) disagrees with compile(logits) and compile(jvp)")


def time_loop(fn, feeds, k):
    """Seconds for k calls of a compiled function."""
    args = {name: feeds[name] for name in fn.inputs}
    started = time.perf_counter()
    for _ in range(k):
        fn(**args)
    return time.perf_counter() - started


def calibrate(fn, feeds):
    """Smallest power of two k with one loop of k calls taking MIN_LOOP_SECONDS."""
    k = 1
    while time_loop(fn, feeds, k) < MIN_LOOP_SECONDS:
        k *= 2
    return k


def bench(n_in, n_hidden, n_out, batch, rounds, rng):
    """Per-call seconds of forward, jvp and both, one triple per round, and k."""
    contenders = compile_functions(n_in, n_hidden, n_out)
    feeds = make_feeds(n_in, n_hidden, n_out, batch, rng)
    check_jvp(*contenders, feeds)
    k = calibrate(contenders[0], feeds)
    triples = []
    for r in range(rounds):
        seconds = [0.0] * len(contenders)
        for i in range(len(contenders)):   # rotate which goes first
            j = (r + i) % len(contenders)
            seconds[j] = time_loop(contenders[j], feeds, k) / k
        triples.append(tuple(seconds))
    return triples, k


def ratio_cells(triples, column):
    """The ratio of medians column / forward and the quartiles of the per-round ratios."""
    ratio = statistics.median(t[column] for t in triples) / statistics.median(t[0] for t in triples)
    q1, q3 = np.percentile([t[column] / t[0] for t in triples], [25, 75])
    return f"{ratio:>7.2f} {q1:>6.2f}-{q3:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds per size: a smoke run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    print(f"Python {platform.python_version()}, NumPy {np.__version__}, float64")
    print(f"{'network':>12} {'batch':>5} {'k':>5} {'forward':>10} {'jvp':>10} {'both':>10} "
          f"{'jvp/fwd':>7} {'q1-q3':>9} {'both/fwd':>8} {'q1-q3':>9}")
    started = time.perf_counter()
    for n_in, n_hidden, n_out, batch, rounds in SIZES:
        triples, k = bench(n_in, n_hidden, n_out, batch, 3 if args.quick else rounds, rng)
        forward, jvp, both = (statistics.median(t[i] for t in triples) * 1e6 for i in range(3))
        network = f"{n_in}-{n_hidden}-{n_out}"
        print(f"{network:>12} {batch:>5} {k:>5} {forward:>8.1f}us {jvp:>8.1f}us {both:>8.1f}us "
              f"{ratio_cells(triples, 1)} {ratio_cells(triples, 2):>18}")
    print("forward, jvp, both: median seconds per call over interleaved rounds of k calls each of")
    print("compile(logits), compile(jvp) and compile([logits, jvp]); ratios: of those medians to")
    print("forward's; q1-q3: quartiles of the per-round ratios. jvp was checked against central")
    print("differences first.")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
