"""Time graphcomp's generated Adam train_step against a hand-written NumPy Adam step.

The network is the founding MLP (linear -> relu -> linear -> log_softmax ->
mean nll_loss) at the sizes of bench_train_step.py, trained with Adam
(torch.optim.Adam's definition). For each size and dtype the script first
checks that one step of each gives the same loss, params and moments (so both
do equal work), then times them interleaved: each round times k steps of
graphcomp's checked ``step.train_step(params, state, x=, y=)``, then k steps of
the hand-written code, alternating which goes first, each loop starting from
the same params and state. It prints the median time per step of each, the
ratio graphcomp / hand-written of the medians, and the quartiles of the
per-round ratios.

Usage: ``python benchmarks/bench_adam.py [--quick]``.
"""

import math
import time

import numpy as np
from bench_train_step import copy_params, make_problem, print_table

import graphcomp as gc

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8
MIN_LOOP_SECONDS = 0.1
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


def compile_step(n_in, n_hidden, n_out, dtype):
    """Declare the MLP in graphcomp and compile its Adam training step."""
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
    return gc.compile_training(loss, params=[W1, b1, W2, b2], optimizer=gc.optim.Adam(lr=LR, b1=B1, b2=B2, eps=EPS))


def handwritten_adam_step(params, state, x, y):
    """One Adam step of the same MLP, written by hand as frugally as NumPy allows; updates in place.

    The forward and backward pass are bench_train_step's careful ones (relu and
    exp in place, one pass for the softmax gradient) without the learning rate
    folded in, since Adam needs the raw gradient. The update works in place:
    the moments are scaled and added to, and each gradient's buffer, dead after
    the moments are updated, holds its square and then the step, so the only
    temporary of an update is (1 - b1) * g.
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = x.shape[0]
    rows = np.arange(n)

    h = x @ W1
    h += b1
    np.maximum(h, 0, out=h)
    logits = h @ W2
    logits += b2
    logits -= logits.max(axis=1, keepdims=True)
    target = logits[rows, y]
    p = np.exp(logits, out=logits)
    sum_exp = p.sum(axis=1)
    loss = (np.log(sum_exp).sum() - target.sum()) / n

    p *= np.divide(1.0 / n, sum_exp, out=sum_exp)[:, None]   # dL/dlogits = (softmax - onehot) / n
    p[rows, y] -= 1.0 / n
    d_h = p @ W2.T
    g_W2 = h.T @ p
    g_b2 = p.sum(axis=0)
    d_h *= h > 0
    g_W1 = x.T @ d_h
    g_b1 = d_h.sum(axis=0)

    step = state["step"]
    step += 1
    k = int(step)
    root = math.sqrt(1 - B2 ** k)
    lr_t = LR * root / (1 - B1 ** k)
    eps_t = EPS * root
    for w, g, name in ((W1, g_W1, "W1"), (b1, g_b1, "b1"), (W2, g_W2, "W2"), (b2, g_b2, "b2")):
        m, v = state[f"{name}.m"], state[f"{name}.v"]
        m *= B1
        m += (1 - B1) * g
        v *= B2
        g *= g
        g *= 1 - B2
        v += g
        np.sqrt(v, out=g)
        g += eps_t
        np.divide(m, g, out=g)
        g *= lr_t
        w -= g
    return loss


def fresh_state(params):
    """Adam's state before the first step, as graphcomp's init_state lays it out."""
    state = {"step": np.zeros((), np.int64)}
    for name, value in params.items():
        state[f"{name}.m"] = np.zeros_like(value)
        state[f"{name}.v"] = np.zeros_like(value)
    return state


def check_same_step(step, params, x, y, dtype):
    """Raise RuntimeError unless two steps of each give the same loss, params and moments."""
    ours, theirs = copy_params(params), copy_params(params)
    our_state, their_state = step.init_state(ours), fresh_state(theirs)
    for _ in range(2):
        losses = (step.train_step(ours, our_state, x=x, y=y), handwritten_adam_step(theirs, their_state, x, y))
    values = {"loss": losses}
    values.update((name, (ours[name], theirs[name])) for name in params)
    values.update((name, (our_state[name], their_state[name])) for name in our_state)
    tol = TOLERANCE[dtype]
    differ = [name for name, (a, b) in values.items() if not np.allclose(a, b, rtol=tol, atol=tol)]
    if differ:
        raise RuntimeError(f"{dtype} {x.shape}: graphcomp and hand-written Adam steps differ in {differ}")


def time_loop(train_step, params, x, y, k):
    """Seconds for k train steps, starting from fresh copies of params and a fresh state."""
    params = copy_params(params)
    state = fresh_state(params)
    started = time.perf_counter()
    for _ in range(k):
        train_step(params, state, x, y)
    return time.perf_counter() - started


def bench(n_in, n_hidden, n_out, batch, rounds, dtype, rng):
    """Per-step seconds of graphcomp and hand-written code, one pair per round, and k."""
    step = compile_step(n_in, n_hidden, n_out, dtype)
    params, x, y = make_problem(n_in, n_hidden, n_out, batch, dtype, rng)
    check_same_step(step, params, x, y, dtype)

    def graphcomp_step(p, s, xb, yb):
        return step.train_step(p, s, x=xb, y=yb)

    contenders = (graphcomp_step, handwritten_adam_step)
    k = 1
    while time_loop(handwritten_adam_step, params, x, y, k) < MIN_LOOP_SECONDS:
        k *= 2
    pairs = []
    for r in range(rounds):
        seconds = {}
        for fn in contenders if r % 2 == 0 else contenders[::-1]:
            seconds[fn] = time_loop(fn, params, x, y, k) / k
        pairs.append((seconds[graphcomp_step], seconds[handwritten_adam_step]))
    return pairs, k


def main():
    print_table(bench, "graphcomp: step.train_step(params, state, x=, y=), every value checked; handwritten:\n"
                       "the careful step above. Medians of seconds per step over interleaved rounds of k steps;\n"
                       "ratio: graphcomp / handwritten of those medians; q1-q3: quartiles of the per-round ratios.",
                __doc__)


if __name__ == "__main__":
    main()
