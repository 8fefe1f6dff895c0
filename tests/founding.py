"""The founding network of issue 2 and a hand-written NumPy backprop to compare it with."""
import numpy as np

import graphcomp as gc


def build(n_in=64, n_hidden=32, n_out=10, dtype="float64"):
    """input -> linear -> relu -> linear -> log_softmax -> nll_loss; returns (graph, loss, params)."""
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
    return g, loss, [W1, b1, W2, b2]


def feed(batch=16, n_in=64, n_hidden=32, n_out=10, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(batch, n_in)).astype(dtype),
        "y": rng.integers(0, n_out, batch),
        "W1": (rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in)).astype(dtype),
        "b1": (rng.normal(size=n_hidden) * 0.1).astype(dtype),
        "W2": (rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden)).astype(dtype),
        "b2": (rng.normal(size=n_out) * 0.1).astype(dtype),
    }


def hand_backprop(x, y, W1, b1, W2, b2):
    """Loss and gradients written out by hand, the textbook way."""
    z = x @ W1 + b1
    h = np.maximum(z, 0)
    logits = h @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -logp[np.arange(n), y].mean()
    d_logits = np.exp(logp)
    d_logits[np.arange(n), y] -= 1
    d_logits /= n
    d_h = d_logits @ W2.T
    d_z = d_h * (z > 0)
    return loss, x.T @ d_z, d_z.sum(axis=0), h.T @ d_logits, d_logits.sum(axis=0)
