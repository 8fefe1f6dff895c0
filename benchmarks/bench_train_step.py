"""Time graphcomp's compiled train_step against a hand-written NumPy training step.

The network is the founding MLP: linear -> relu -> linear -> log_softmax ->
mean nll_loss, updated by SGD. For each size and dtype the script first checks
that one step of each implementation gives the same loss and updated params
(so both do equal work), then times them interleaved: each round times a loop
of k steps of graphcomp, then k steps of the hand-written code, alternating
which goes first, always starting from the same initial params. It prints the
median time per step of each, the ratio graphcomp / hand-written of the
medians, and the quartiles of the per-round ratios as a measure of noise.

Usage: ``python benchmarks/bench_train_step.py [--quick]``.
"""

import argparse
import platform
import statistics
import time

import numpy as np

import graphcomp as gc

# (inputs, hidden, classes, batch, rounds): fewer rounds for the big size.
SIZES = [
    (64, 32, 10, 32, 50),
    (784, 256, 10, 128, 50),
    (1024, 2048, 10, 512, 20),
]
DTYPES = ["float64", "float32"]
LR = 0.1
MIN_LOOP_SECONDS = 0.1  # k is chosen so one timed loop takes at least this long
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def compile_step(n_in, n_hidden, n_out, dtype):
    """Declare the MLP in graphcomp and compile its training step."""
    g = gc.Graph("mlp", dtype=dtype)
    x = g.input("x", (None, n_in))
    y = g.input("y", (None,), dtype="int64")
    W1 = g.param("W1", (n_in, n_hidden))
    b1 = g.param("b1", (n_hidden,))
    W2 = g.param("W2", (n_hidden, n_out))
    b2 = g.param("b2", (n_out,))
    h = gc.relu(x @ W1 + b1, name="h")
    logits = gc.add(h @ W2, b2, name="logits")
    loss = gc.nll_loss(gc.log_softmax(logits, axis=-1), y, name="loss")
    return gc.compile_training(loss, params=[W1, b1, W2, b2])


def handwritten_train_step(params, x, y, lr):
    """One SGD step of the same MLP, written by hand as frugally as NumPy allows; updates params in place.

    relu and exp overwrite their input, lr is folded into the softmax gradient
    so that each update subtracts the product that is already lr * gradient,
    and the only full-size temporaries are the matmul results and the relu mask.
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = x.shape[0]
    rows = np.arange(n)

    h = x @ W1
    h += b1
    np.maximum(h, 0, out=h)                  # relu in place: h > 0 exactly where z > 0
    logits = h @ W2
    logits += b2
    logits -= logits.max(axis=1, keepdims=True)
    target = logits[rows, y]
    p = np.exp(logits, out=logits)
    sum_exp = p.sum(axis=1)
    loss = (np.log(sum_exp).sum() - target.sum()) / n

    # lr * dL/dlogits = (softmax - onehot) * lr / n: one pass over p, so every
    # gradient below is already lr times the gradient and updates are W -= step.
    p *= np.divide(lr / n, sum_exp, out=sum_exp)[:, None]
    p[rows, y] -= lr / n
    step_h = p @ W2.T                        # before W2 changes
    W2 -= h.T @ p
    b2 -= p.sum(axis=0)
    step_h *= h > 0                          # relu mask (faster here than np.sign(h, out=h))
    W1 -= x.T @ step_h
    b1 -= step_h.sum(axis=0)
    return loss


def make_problem(n_in, n_hidden, n_out, batch, dtype, rng):
    """Random He-initialised params and one random batch, all in dtype."""
    params = {
        "W1": rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_hidden)).astype(dtype),
        "b1": np.zeros(n_hidden, dtype),
        "W2": rng.normal(0.0, np.sqrt(2.0 / n_hidden), (n_hidden, n_out)).astype(dtype),
        "b2": np.zeros(n_out, dtype),
    }
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    y = rng.integers(0, n_out, batch, dtype=np.int64)
    return params, x, y


def copy_params(params):
    """A deep copy of a name -> array dict."""
    return {name: value.copy() for name, value in params.items()}


def check_same_step(step, params, x, y, dtype):
    """Raise RuntimeError unless one step of each gives the same loss and updated params."""
    ours, theirs = copy_params(params), copy_params(params)
    values = {"loss": (step.train_step(ours, x=x, y=y, lr=LR), handwritten_train_step(theirs, x, y, LR))}
    values.update((name, (ours[name], theirs[name])) for name in params)
    tol = TOLERANCE[dtype]
    differ = [name for name, (a, b) in values.items() if not np.allclose(a, b, rtol=tol, atol=tol)]
    if differ:
        raise RuntimeError(f"{dtype} {x.shape}: graphcomp and hand-written steps differ in {differ}")


def time_loop(train_step, params, x, y, k):
    """Seconds for k train steps, starting from a fresh copy of params."""
    params = copy_params(params)
    started = time.perf_counter()
    for _ in range(k):
        train_step(params, x, y, LR)
    return time.perf_counter() - started


def calibrate(train_step, params, x, y):
    """Smallest power of two k with one loop of k steps taking MIN_LOOP_SECONDS."""
    k = 1
    while time_loop(train_step, params, x, y, k) < MIN_LOOP_SECONDS:
        k *= 2
    return k


def bench(n_in, n_hidden, n_out, batch, rounds, dtype, rng):
    """Per-step seconds of graphcomp and hand-written code, one pair per round, and k."""
    step = compile_step(n_in, n_hidden, n_out, dtype)
    params, x, y = make_problem(n_in, n_hidden, n_out, batch, dtype, rng)
    check_same_step(step, params, x, y, dtype)

    def graphcomp_step(p, xb, yb, lr):
        return step.train_step(p, x=xb, y=yb, lr=lr)

    contenders = (graphcomp_step, handwritten_train_step)
    k = calibrate(handwritten_train_step, params, x, y)
    pairs = []
    for r in range(rounds):
        seconds = {}
        for fn in contenders if r % 2 == 0 else contenders[::-1]:  # alternate which goes first
            seconds[fn] = time_loop(fn, params, x, y, k) / k
        pairs.append((seconds[graphcomp_step], seconds[handwritten_train_step]))
    return pairs, k


def blas_description():
    """Which BLAS NumPy uses and with how many threads (needs the `bench` extra)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to report it)"
    blas = [
        f"{info['internal_api']} {info['version']} ({info['num_threads']} threads)"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    ]
    return ", ".join(blas) or "none found"


def print_table(bench, legend, doc):
    """Run ``bench(n_in, n_hidden, n_out, batch, rounds, dtype, rng) -> (pairs, k)`` at every size and
    dtype (3 rounds each with ``--quick``) and print the table of medians and ratios, then ``legend``;
    ``doc`` is the calling script's docstring, for ``--help``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds per configuration: a smoke run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    print(f"Python {platform.python_version()}, NumPy {np.__version__}, BLAS: {blas_description()}")
    print(f"{'network':>15} {'batch':>5} {'dtype':>7} {'k':>5} {'graphcomp':>12} {'handwritten':>12} "
          f"{'ratio':>6} {'round ratios q1-q3':>18}")
    started = time.perf_counter()
    for n_in, n_hidden, n_out, batch, rounds in SIZES:
        for dtype in DTYPES:
            pairs, k = bench(n_in, n_hidden, n_out, batch, 3 if args.quick else rounds, dtype, rng)
            ours = statistics.median(a for a, _ in pairs)
            theirs = statistics.median(b for _, b in pairs)
            q1, _, q3 = np.percentile([a / b for a, b in pairs], [25, 50, 75])
            network = f"{n_in}-{n_hidden}-{n_out}"
            print(f"{network:>15} {batch:>5} {dtype:>7} {k:>5} {ours * 1e6:>10.1f}us {theirs * 1e6:>10.1f}us "
                  f"{ours / theirs:>6.2f} {q1:>11.2f}-{q3:.2f}")
    print(legend)
    print(f"total {time.perf_counter() - started:.0f} s")


def main():
    print_table(bench, "graphcomp, handwritten: median seconds per step over interleaved rounds of k steps each;\n"
                       "ratio: graphcomp / handwritten of those medians; q1-q3: quartiles of the per-round ratios.",
                __doc__)


if __name__ == "__main__":
    main()
