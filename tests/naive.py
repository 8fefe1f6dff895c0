"""Naive loop references for convolution, pooling and recurrent cells: one output element at a time,
written from the definitions, so they share nothing with the vectorized code they check."""
import itertools

import numpy as np


def _windows(shape, kernel, stride, padding, dilation=(1, 1)):
    """Yield (i, j, [(row, col) of each tap in the padded input]) for each output position."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    hp, wp = shape[2] + sum(padding[0]), shape[3] + sum(padding[1])
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    for i, j in itertools.product(range(oh), range(ow)):
        yield i, j, [(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]


def out_size(shape, kernel, stride, padding, dilation=(1, 1)):
    hp, wp = shape[2] + sum(padding[0]), shape[3] + sum(padding[1])
    return ((hp - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1,
            (wp - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1)


def conv2d(x, w, stride, padding, dilation, groups):
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(padding))
    out, per_group = w.shape[:2]
    y = np.zeros((x.shape[0], out) + out_size(x.shape, w.shape[2:], stride, padding, dilation))
    for n, o in itertools.product(range(x.shape[0]), range(out)):
        g = o // (out // groups)
        for i, j, taps in _windows(x.shape, w.shape[2:], stride, padding, dilation):
            for c in range(per_group):
                for k, (r, s) in enumerate(taps):
                    y[n, o, i, j] += xp[n, g * per_group + c, r, s] * w[o, c].flat[k]
    return y


def conv2d_grad_input(ct, w, size, stride, padding, dilation, groups):
    out, per_group = w.shape[:2]
    shape = (ct.shape[0], per_group * groups) + tuple(size)
    dxp = np.zeros((shape[0], shape[1], size[0] + sum(padding[0]), size[1] + sum(padding[1])))
    for n, o in itertools.product(range(ct.shape[0]), range(out)):
        g = o // (out // groups)
        for i, j, taps in _windows(shape, w.shape[2:], stride, padding, dilation):
            for c in range(per_group):
                for k, (r, s) in enumerate(taps):
                    dxp[n, g * per_group + c, r, s] += ct[n, o, i, j] * w[o, c].flat[k]
    return dxp[:, :, padding[0][0]:padding[0][0] + size[0], padding[1][0]:padding[1][0] + size[1]]


def conv2d_grad_weight(x, ct, kernel, stride, padding, dilation, groups):
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(padding))
    out, per_group = ct.shape[1], x.shape[1] // groups
    dw = np.zeros((out, per_group) + tuple(kernel))
    for n, o in itertools.product(range(x.shape[0]), range(out)):
        g = o // (out // groups)
        for i, j, taps in _windows(x.shape, kernel, stride, padding, dilation):
            for c in range(per_group):
                for k, (r, s) in enumerate(taps):
                    dw[o, c].flat[k] += xp[n, g * per_group + c, r, s] * ct[n, o, i, j]
    return dw


def im2col(x, kernel, stride, padding, dilation, groups, extra=None):
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(padding))
    per_group = x.shape[1] // groups
    oh, ow = out_size(x.shape, kernel, stride, padding, dilation)
    rows = per_group * kernel[0] * kernel[1]
    cols = np.full((x.shape[0], groups, rows + (extra is not None), oh * ow), np.nan if extra is None else extra)
    for n, g, c in itertools.product(range(x.shape[0]), range(groups), range(per_group)):
        for i, j, taps in _windows(x.shape, kernel, stride, padding, dilation):
            for k, (r, s) in enumerate(taps):
                cols[n, g, c * len(taps) + k, i * ow + j] = xp[n, g * per_group + c, r, s]
    return cols


def col2im(cols, size, kernel, stride, padding, dilation, extra=False):
    cols = cols[:, :, :cols.shape[2] - extra]
    n, groups, rows = cols.shape[:3]
    channels = groups * rows // (kernel[0] * kernel[1])
    shape = (n, channels) + tuple(size)
    xp = np.zeros((n, channels, size[0] + sum(padding[0]), size[1] + sum(padding[1])))
    ow = out_size(shape, kernel, stride, padding, dilation)[1]
    for b, c in itertools.product(range(n), range(channels)):
        g, cg = divmod(c, channels // groups)
        for i, j, taps in _windows(shape, kernel, stride, padding, dilation):
            for k, (r, s) in enumerate(taps):
                xp[b, c, r, s] += cols[b, g, cg * len(taps) + k, i * ow + j]
    return xp[:, :, padding[0][0]:padding[0][0] + size[0], padding[1][0]:padding[1][0] + size[1]]


def _pool(x, kernel, stride, padding, fill, reduce):
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(padding), constant_values=fill)
    y = np.zeros(x.shape[:2] + out_size(x.shape, kernel, stride, padding))
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for i, j, taps in _windows(x.shape, kernel, stride, padding):
            y[n, c, i, j] = reduce([xp[n, c, r, s] for r, s in taps], taps, n, c)
    return y


def max_pool2d(x, kernel, stride, padding):
    return _pool(x, kernel, stride, padding, -np.inf, lambda values, taps, n, c: max(values))


def avg_pool2d(x, kernel, stride, padding):
    return _pool(x, kernel, stride, padding, 0.0, lambda values, taps, n, c: sum(values) / len(values))


def _first_max(x, kernel, stride, padding):
    """For each output position: (n, c, i, j, padded row, padded col) of its window's first max."""
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(padding), constant_values=-np.inf)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for i, j, taps in _windows(x.shape, kernel, stride, padding):
            values = [xp[n, c, r, s] for r, s in taps]
            yield (n, c, i, j) + taps[values.index(max(values))]


def max_pool2d_grad(ct, x, kernel, stride, padding):
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + sum(padding[0]), x.shape[3] + sum(padding[1])))
    for n, c, i, j, r, s in _first_max(x, kernel, stride, padding):
        dxp[n, c, r, s] += ct[n, c, i, j]
    return dxp[:, :, padding[0][0]:padding[0][0] + x.shape[2], padding[1][0]:padding[1][0] + x.shape[3]]


def max_pool2d_pick(u, x, kernel, stride, padding):
    up = np.pad(u, ((0, 0), (0, 0)) + tuple(padding))
    y = np.zeros(x.shape[:2] + out_size(x.shape, kernel, stride, padding))
    for n, c, i, j, r, s in _first_max(x, kernel, stride, padding):
        y[n, c, i, j] = up[n, c, r, s]
    return y


def avg_pool2d_grad(ct, like, kernel, stride, padding):
    dxp = np.zeros((like.shape[0], like.shape[1], like.shape[2] + sum(padding[0]), like.shape[3] + sum(padding[1])))
    for n, c in itertools.product(range(like.shape[0]), range(like.shape[1])):
        for i, j, taps in _windows(like.shape, kernel, stride, padding):
            for r, s in taps:
                dxp[n, c, r, s] += ct[n, c, i, j] / len(taps)
    return dxp[:, :, padding[0][0]:padding[0][0] + like.shape[2], padding[1][0]:padding[1][0] + like.shape[3]]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def elman(h, xs, W_ih, W_hh, b_ih, b_hh):
    """All hidden states of an Elman RNN, one step and one batch row at a time."""
    out = []
    for x in xs:
        h = np.array([np.tanh(W_ih @ xr + b_ih + W_hh @ hr + b_hh) for xr, hr in zip(x, h)])
        out.append(h)
    return np.array(out)


def lstm(h, c, xs, W_ih, W_hh, b_ih, b_hh):
    """All (h, c) of an LSTM with PyTorch's gate order i, f, g, o, one step and batch row at a time."""
    hs, cs = [], []
    size = h.shape[1]
    for x in xs:
        rows = []
        for xr, hr, cr in zip(x, h, c):
            gates = W_ih @ xr + b_ih + W_hh @ hr + b_hh
            i, f, g, o = (gates[k * size:(k + 1) * size] for k in range(4))
            cr = sigmoid(f) * cr + sigmoid(i) * np.tanh(g)
            rows.append((sigmoid(o) * np.tanh(cr), cr))
        h, c = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        hs.append(h)
        cs.append(c)
    return np.array(hs), np.array(cs)


def gru(h, xs, W_ih, W_hh, b_ih, b_hh):
    """All hidden states of a GRU with PyTorch's gate order r, z, n, one step and batch row at a time."""
    out = []
    size = h.shape[1]
    for x in xs:
        rows = []
        for xr, hr in zip(x, h):
            gi, gh = W_ih @ xr + b_ih, W_hh @ hr + b_hh
            r = sigmoid(gi[:size] + gh[:size])
            z = sigmoid(gi[size:2 * size] + gh[size:2 * size])
            n = np.tanh(gi[2 * size:] + r * gh[2 * size:])
            rows.append((1 - z) * n + z * hr)
        h = np.array(rows)
        out.append(h)
    return np.array(out)
