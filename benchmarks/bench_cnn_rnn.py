"""Time graphcomp's generated conv-net and LSTM forward + backward against hand-written NumPy and PyTorch CPU.

Two workloads, each a forward pass and the gradients of a scalar loss for
every weight, on the shapes of the issue:

- **conv**: a batch of 64 3x28x28 images through conv 3x3 (3->16, padding 1),
  relu, conv 3x3 (16->32, padding 1), relu; loss = sum(out * R) for a fixed
  random R. Gradients of both kernels and biases.
- **lstm**: an LSTM (PyTorch's gate order) with input 32 and hidden 128 over
  50 steps of a batch of 64; loss = sum(hs * R) over every step's hidden
  state. The input projection of all steps is one matmul before the loop (as
  careful code, JAX's and PyTorch's own do), the scan carries (h, c).
  Gradients of W_ih, W_hh and the bias.

Contestants, checked to agree first, then timed interleaved (each round runs
a loop of k calls of each, rotating which goes first):

- graphcomp: ``gc.compile([loss, *gc.grad(loss, weights)])``;
- hand-written NumPy, as frugal as we could write it with the fastest forms we
  measured (the conv net builds each layer's im2col columns once for the
  forward and the weight gradient; the LSTM saves its gates per step and never
  recomputes them);
- PyTorch CPU (``torch.nn.functional.conv2d``, ``torch.nn.LSTM``, autograd), if installed,
  with as many threads as NumPy's BLAS gets.

Prints the median time per call of each, the ratios graphcomp / NumPy and
graphcomp / PyTorch of the medians and the quartiles of the per-round ratios.

Usage: ``python benchmarks/bench_cnn_rnn.py [--quick] [--dtype float32|float64]``.
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import graphcomp as gc

MIN_LOOP_SECONDS = 0.2
CONV = dict(batch=64, size=28, channels=(3, 16, 32))
LSTM = dict(batch=64, inputs=32, hidden=128, steps=50)


# ---- conv ---------------------------------------------------------------------------------------

def conv_graph(dtype):
    size, (c0, c1, c2) = CONV["size"], CONV["channels"]
    g = gc.Graph("conv", dtype=dtype)
    x = g.input("x", (None, c0, size, size))
    R = g.input("R", (None, c2, size, size))
    w1, b1 = g.param("w1", (c1, c0, 3, 3)), g.param("b1", (c1,))
    w2, b2 = g.param("w2", (c2, c1, 3, 3)), g.param("b2", (c2,))
    h1 = gc.relu(gc.conv2d(x, w1, b1, padding=1))
    h2 = gc.relu(gc.conv2d(h1, w2, b2, padding=1))
    loss = gc.sum(h2 * R, name="loss")
    return gc.compile([loss, *gc.grad(loss, [w1, b1, w2, b2])])


def conv_numpy(x, R, w1, b1, w2, b2):
    """Hand-written forward and backward of the same net, with the fastest forms we measured: windows + einsum
    forward, the weight gradient one matmul against the im2col columns of the forward's windows (built once per
    layer), the input gradient one matmul for all taps added back tap by tap."""
    n, size = x.shape[0], x.shape[2]

    def columns(a):        # (c*9, n*h*w) im2col columns of a padded by 1
        win = sliding_window_view(np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
        return win, win.transpose(1, 4, 5, 0, 2, 3).reshape(a.shape[1] * 9, -1)

    win1, cols1 = columns(x)
    z1 = np.einsum("nchwij,ocij->nohw", win1, w1, optimize=True)
    z1 += b1[:, None, None]
    h1 = np.maximum(z1, 0)
    win2, cols2 = columns(h1)
    z2 = np.einsum("nchwij,ocij->nohw", win2, w2, optimize=True)
    z2 += b2[:, None, None]
    loss = np.maximum(z2, 0).ravel() @ R.ravel()
    dz2 = (R * (z2 > 0)).transpose(1, 0, 2, 3).reshape(w2.shape[0], -1)       # (o, n*h*w)
    dw2 = (dz2 @ cols2.T).reshape(w2.shape)
    db2 = dz2.sum(axis=1)
    taps = (w2.reshape(w2.shape[0], -1).T @ dz2).reshape(w2.shape[1], 3, 3, n, size, size)
    dh1 = np.zeros((w2.shape[1], n, size + 2, size + 2), x.dtype)
    for i in range(3):
        for j in range(3):
            dh1[:, :, i:i + size, j:j + size] += taps[:, i, j]
    dz1 = (dh1[:, :, 1:-1, 1:-1] * (z1 > 0).transpose(1, 0, 2, 3)).reshape(w1.shape[0], -1)
    dw1 = (dz1 @ cols1.T).reshape(w1.shape)
    db1 = dz1.sum(axis=1)
    return loss, dw1, db1, dw2, db2


def conv_torch(torch, x, R, w1, b1, w2, b2):
    F = torch.nn.functional
    h = F.relu(F.conv2d(F.relu(F.conv2d(x, w1, b1, padding=1)), w2, b2, padding=1))
    loss = (h * R).sum()
    return (loss, *torch.autograd.grad(loss, [w1, b1, w2, b2]))


def conv_values(rng, dtype):
    n, size, (c0, c1, c2) = CONV["batch"], CONV["size"], CONV["channels"]
    return {"x": rng.normal(size=(n, c0, size, size)).astype(dtype),
            "R": rng.normal(size=(n, c2, size, size)).astype(dtype),
            "w1": rng.normal(0, 0.3, (c1, c0, 3, 3)).astype(dtype), "b1": rng.normal(0, 0.1, c1).astype(dtype),
            "w2": rng.normal(0, 0.1, (c2, c1, 3, 3)).astype(dtype), "b2": rng.normal(0, 0.1, c2).astype(dtype)}


# ---- lstm ---------------------------------------------------------------------------------------

def lstm_graph(dtype):
    I, H, T = LSTM["inputs"], LSTM["hidden"], LSTM["steps"]
    g = gc.Graph("lstm", dtype=dtype)
    xs = g.input("xs", (T, None, I))
    R = g.input("R", (T, None, H))
    h0, c0 = g.input("h0", (None, H)), g.input("c0", (None, H))
    W_ih, W_hh, b = g.param("W_ih", (4 * H, I)), g.param("W_hh", (4 * H, H)), g.param("b", (4 * H,))
    projected = gc.add(xs @ W_ih.T, b, name="projected")      # every step's input projection in one matmul

    def step(state, p):
        h, c = gc.lstm_cell(state, p, None, W_hh, name="h_new")    # W_ih=None: p is the projected input
        return [h, c], h
    _, hs = gc.scan(step, [h0, c0], projected, name="lstm")
    loss = gc.sum(hs * R, name="loss")
    return gc.compile([loss, *gc.grad(loss, [W_ih, W_hh, b])])


def lstm_numpy(xs, R, h0, c0, W_ih, W_hh, b):
    """Hand-written LSTM forward (saving each step's gates) and backward through time."""
    T, B, _ = xs.shape
    H = h0.shape[1]
    projected = xs @ W_ih.T
    projected += b
    gates = np.empty((T, B, 4 * H), xs.dtype)       # activated i, f, g, o of each step
    cs = np.empty((T + 1, B, H), xs.dtype)
    hs = np.empty((T + 1, B, H), xs.dtype)
    hs[0], cs[0] = h0, c0
    for t in range(T):
        a = projected[t] + hs[t] @ W_hh.T
        s = gates[t]
        s[:] = a
        s[:, :2 * H] = 1 / (1 + np.exp(-a[:, :2 * H]))
        s[:, 3 * H:] = 1 / (1 + np.exp(-a[:, 3 * H:]))
        np.tanh(a[:, 2 * H:3 * H], out=s[:, 2 * H:3 * H])
        i, f, g, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
        cs[t + 1] = f * cs[t] + i * g
        hs[t + 1] = o * np.tanh(cs[t + 1])
    loss = np.vdot(hs[1:], R)
    d_gates = np.empty_like(gates)
    dh = np.zeros((B, H), xs.dtype)
    dc = np.zeros((B, H), xs.dtype)
    for t in reversed(range(T)):
        s = gates[t]
        i, f, g, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
        dh += R[t]
        tc = np.tanh(cs[t + 1])
        dc += dh * o * (1 - tc * tc)
        d = d_gates[t]
        d[:, :H] = dc * g * i * (1 - i)
        d[:, H:2 * H] = dc * cs[t] * f * (1 - f)
        d[:, 2 * H:3 * H] = dc * i * (1 - g * g)
        d[:, 3 * H:] = dh * tc * o * (1 - o)
        dc *= f
        dh = d @ W_hh
    flat = d_gates.reshape(T * B, 4 * H)
    return (loss, flat.T @ xs.reshape(T * B, -1), flat.T @ hs[:-1].reshape(T * B, H), flat.sum(axis=0))


def lstm_torch(torch, module, xs, R, h0, c0):
    out, _ = module(xs, (h0[None], c0[None]))
    loss = (out * R).sum()
    return (loss, *torch.autograd.grad(loss, [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0]))


def lstm_values(rng, dtype):
    B, I, H, T = LSTM["batch"], LSTM["inputs"], LSTM["hidden"], LSTM["steps"]
    k = 1 / np.sqrt(H)
    return {"xs": rng.normal(size=(T, B, I)).astype(dtype), "R": rng.normal(size=(T, B, H)).astype(dtype),
            "h0": np.zeros((B, H), dtype), "c0": np.zeros((B, H), dtype),
            "W_ih": rng.uniform(-k, k, (4 * H, I)).astype(dtype), "W_hh": rng.uniform(-k, k, (4 * H, H)).astype(dtype),
            "b": rng.uniform(-k, k, 4 * H).astype(dtype)}


# ---- timing -------------------------------------------------------------------------------------

def timed(fn, k):
    started = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - started) / k


def race(contestants, rounds):
    """Median seconds per call of each, and the per-round ratios of the first to each other."""
    first = next(iter(contestants.values()))
    first()
    k = max(1, int(MIN_LOOP_SECONDS / max(timed(first, 1), 1e-6)))
    times = {name: [] for name in contestants}
    names = list(contestants)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(contestants[name], k))
    return times


def report(title, times):
    names = list(times)
    print(f"\n{title}")
    for name in names:
        print(f"  {name:<12} median {statistics.median(times[name]) * 1e3:8.2f} ms per forward + backward")
    base = names[0]
    for other in names[1:]:
        ratios = sorted(a / b for a, b in zip(times[base], times[other]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print(f"  {base} / {other}: {statistics.median(times[base]) / statistics.median(times[other]):.2f} "
              f"(per-round quartiles {q[0]:.2f} {q[1]:.2f} {q[2]:.2f})")


def close(a, b, dtype):
    tol = 1e-3 if dtype == "float32" else 1e-8
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) <= tol * (1 + np.max(np.abs(b)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    rounds = 3 if args.quick else 15
    try:
        import torch
    except ImportError:
        torch = None
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed") + f", {args.dtype}")
    rng = np.random.default_rng(0)

    v = conv_values(rng, args.dtype)
    f = conv_graph(args.dtype)
    ours, hand = f(**v), conv_numpy(**v)
    assert all(close(a, b, args.dtype) for a, b in zip(ours, hand)), "conv: graphcomp and NumPy disagree"
    contestants = {"graphcomp": lambda: f(**v), "numpy": lambda: conv_numpy(**v)}
    if torch:
        torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count())))
        tv = {k: torch.tensor(a, requires_grad=k[0] in "wb") for k, a in v.items()}
        theirs = conv_torch(torch, **tv)
        assert all(close(a, b.detach().numpy(), args.dtype) for a, b in zip(ours, theirs)), "conv: torch disagrees"
        contestants["torch"] = lambda: conv_torch(torch, **tv)
    report("conv2d net (64x3x28x28, 3->16->32, 3x3): forward + gradients", race(contestants, rounds))

    v = lstm_values(rng, args.dtype)
    f = lstm_graph(args.dtype)
    ours, hand = f(**v), lstm_numpy(**v)
    assert all(close(a, b, args.dtype) for a, b in zip(ours, hand)), "lstm: graphcomp and NumPy disagree"
    contestants = {"graphcomp": lambda: f(**v), "numpy": lambda: lstm_numpy(**v)}
    if torch:
        H = LSTM["hidden"]
        module = torch.nn.LSTM(LSTM["inputs"], H).to(getattr(torch, args.dtype))
        with torch.no_grad():
            module.weight_ih_l0.copy_(torch.tensor(v["W_ih"]))
            module.weight_hh_l0.copy_(torch.tensor(v["W_hh"]))
            module.bias_ih_l0.copy_(torch.tensor(v["b"]))
            module.bias_hh_l0.zero_()
        tv = {k: torch.tensor(v[k]) for k in ("xs", "R", "h0", "c0")}
        theirs = lstm_torch(torch, module, **tv)
        assert all(close(a, b.detach().numpy(), args.dtype) for a, b in zip(ours, theirs)), "lstm: torch disagrees"
        contestants["torch"] = lambda: lstm_torch(torch, module, **tv)
    report("LSTM (batch 64, 32->128, 50 steps): forward + BPTT gradients", race(contestants, rounds))


if __name__ == "__main__":
    main()
