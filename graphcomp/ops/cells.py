"""Recurrent cells (Elman, LSTM, GRU) built from ops, with PyTorch's weight layout and gate order; imports graph, ops.

Each cell is one time step: use it as (part of) the body of ``gc.scan``, or
call it once per step to unroll the loop into the graph. Weights are laid out
as PyTorch's ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell`` keep them, so
``W_ih = cell.weight_ih.detach().numpy()`` and so on port a trained cell:

- ``W_ih``: (gates * hidden, input), ``W_hh``: (gates * hidden, hidden),
  ``b_ih``, ``b_hh``: (gates * hidden,) or None; gates = 1 (Elman), 4
  (LSTM, in the order i, f, g, o) or 3 (GRU, in the order r, z, n).
- ``x``: (batch, input), ``h`` and ``c``: (batch, hidden).
"""
from ..graph import F
from .structure import split


def _affine(x, W, b):
    y = x @ F.transpose(W)
    return y if b is None else y + b


def elman_cell(h, x, W_ih, W_hh, b_ih=None, b_hh=None, *, name=None):
    """One step of an Elman RNN (PyTorch's ``RNNCell``, tanh):
    ``h' = tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)``.

    Returns:
        The new hidden state (batch, hidden).
    """
    return F.tanh(_affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh), name=name)


def lstm_cell(state, x, W_ih, W_hh, b_ih=None, b_hh=None, *, name=None):
    """One step of an LSTM (PyTorch's ``LSTMCell``); ``state`` is ``(h, c)``.

    ``i, f, g, o = split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4)``;
    ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)``; ``h' = sigmoid(o) * tanh(c')``.

    Returns:
        ``(h', c')``; ``h'`` is named ``name`` if given.
    """
    h, c = state
    i, f, g, o = split(_affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh), 4, axis=-1)
    c_new = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    return F.mul(F.sigmoid(o), F.tanh(c_new), name=name), c_new


def gru_cell(h, x, W_ih, W_hh, b_ih=None, b_hh=None, *, name=None):
    """One step of a GRU (PyTorch's ``GRUCell``):

    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Returns:
        The new hidden state (batch, hidden).
    """
    xr, xz, xn = split(_affine(x, W_ih, b_ih), 3, axis=-1)
    hr, hz, hn = split(_affine(h, W_hh, b_hh), 3, axis=-1)
    r = F.sigmoid(xr + hr)
    z = F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)
    return F.add((1.0 - z) * n, z * h, name=name)


PUBLIC = {"elman_cell": elman_cell, "gru_cell": gru_cell, "lstm_cell": lstm_cell}
