"""Convolution and pooling of NCHW images, with their gradient ops; imports graph, op, shapes, codegen.ir.

Every op works on sliding windows of the (padded) input: a strided view
(``sliding_window_view``), never a copy per kernel tap, and never a Python
loop over pixels, channels or batch rows. Convolution contracts the windows
with the kernel in one ``einsum`` (``optimize=True``): measured 2.4 to 2.5
times faster than ``tensordot`` or im2col + matmul on the windows. The
weight gradient is one matmul of the cotangent with the windows laid out as
(channel, tap, position) columns, and the input gradient one matmul giving
every kernel tap's share, added back tap by tap (a loop over the kh * kw
taps, vectorized over everything else): 1.7 and 2.7 times faster than the
einsum forms (docs/performance.md has the figures). Pooling gradients
scatter with ``np.bincount``.

The batch dim may be free; channels and spatial dims are static, so output
sizes are known when the node is added.
"""
from ..codegen.ir import Call, Const, Name
from ..errors import ShapeError
from ..graph import F, Tensor
from ..op import Op, register, require_float, result_dtype
from ..shapes import dims_compatible, format_shape, is_free, is_int
from .structure import concatenate

_WINDOWS = '''
def _windows(x, kernel, stride, padding, dilation, value=0.0):
    """The (n, c, out_h, out_w, kh, kw) windows of NCHW x padded with value: a strided view of it."""
    if any(map(any, padding)):
        x = np.pad(x, ((0, 0), (0, 0)) + padding, constant_values=value)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    return np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
'''

_OUT_SIZE = '''
def _out_size(size, kernel, stride, padding, dilation):
    """(out_h, out_w) of a window op over an input of spatial size."""
    return tuple((s + sum(p) - d * (k - 1) - 1) // st + 1
                 for s, k, st, p, d in zip(size, kernel, stride, padding, dilation, strict=True))
'''

_IM2COL = '''
def _im2col(x, kernel, stride, padding, dilation, groups, extra):
    """The im2col columns of NCHW x, (n, groups, c/groups * kh * kw, out_h * out_w): per image and group one
    matrix, a row per (channel, tap), a column per output position; with a last row of extra's value
    unless extra is None. Always a new array."""
    windows = _windows(x, kernel, stride, padding, dilation)
    n, c, oh, ow, kh, kw = windows.shape
    rows = c // groups * kh * kw
    cols = np.empty((n, groups, rows + (extra is not None), oh * ow), x.dtype)
    taps = cols[:, :, :rows].reshape(n, groups, c // groups, kh, kw, oh, ow)
    taps[...] = windows.reshape(n, groups, c // groups, oh, ow, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4)
    if extra is not None:
        cols[:, :, rows] = extra
    return cols
'''

_COL2IM = '''
def _col2im(cols, size, kernel, stride, padding, dilation, extra):
    """The adjoint of _im2col: every column entry added onto the input position it was copied from
    (entries from the padding, and the extra last row if extra, dropped)."""
    n, groups, rows, positions = cols.shape
    taps = cols[:, :, :rows - extra].reshape(n, groups, -1, kernel[0] * kernel[1], positions)
    return _add_taps(lambda k: taps[:, :, :, k], taps.shape[:3], cols.dtype, size, kernel, stride, padding, dilation)
'''

_CONV2D_TRANSPOSE = '''
def _conv2d_transpose(kernel_matrix, ct, size, kernel, stride, padding, dilation, extra):
    """_col2im(kernel_matrix^T @ ct) without building the columns: each kernel tap's share of the input is
    its rows of the kernel matrix, transposed, times the cotangent (one matmul per tap)."""
    groups, per_out, rows = kernel_matrix.shape
    taps = kernel_matrix[:, :, :rows - extra].reshape(groups, per_out, -1, kernel[0] * kernel[1])
    shape = (ct.shape[0], groups, taps.shape[2])
    return _add_taps(lambda k: taps[:, :, :, k].swapaxes(1, 2) @ ct, shape, np.result_type(kernel_matrix, ct),
                     size, kernel, stride, padding, dilation)
'''

_ADD_TAPS = '''
def _add_taps(share, shape, dtype, size, kernel, stride, padding, dilation):
    """The (n, groups * c, h, w) sum of each kernel tap k's share(k), an (n, groups, c, out_h * out_w)
    array, added at the input positions tap k read (those in the padding dropped): a loop over the
    kh * kw taps, vectorized over the rest."""
    out = _out_size(size, kernel, stride, padding, dilation)
    rows = [_tap(i, out[0], size[0], stride[0], padding[0][0], dilation[0]) for i in range(kernel[0])]
    cols = [_tap(j, out[1], size[1], stride[1], padding[1][0], dilation[1]) for j in range(kernel[1])]
    taps = [(i * kernel[1] + j, rows[i], cols[j]) for i in range(kernel[0]) for j in range(kernel[1])]
    # a tap that reads every input position once (the centre of a "same" convolution) starts the sum
    start = next((t for t in taps if t[1][1] == slice(0, size[0], 1) and t[2][1] == slice(0, size[1], 1)), None)
    x = (np.zeros if start is None else np.empty)((shape[0], shape[1] * shape[2]) + tuple(size), dtype)
    planes = x.reshape(*shape, *size)
    for tap in [start] * (start is not None) + [t for t in taps if t is not start]:
        k, (out_rows, in_rows), (out_cols, in_cols) = tap
        part = share(k).reshape(*shape, *out)[:, :, :, out_rows, out_cols]
        if tap is start:
            planes[...] = part
        else:
            planes[:, :, :, in_rows, in_cols] += part
    return x
'''

_TAP = '''
def _tap(i, out, size, stride, before, dilation):
    """Slices of the output positions whose tap i reads the input (not its padding), and of the input
    positions they read, along one axis."""
    offset = i * dilation - before          # the input position output 0 reads
    first = max(0, -(offset // stride))
    last = max(first, min(out, (size - 1 - offset) // stride + 1))
    start = first * stride + offset
    return slice(first, last), slice(start, start + max(0, (last - first - 1) * stride + 1), stride)
'''

_MAX_POOL2D = '''
def _max_pool2d(x, kernel, stride, padding):
    """The max of each window of NCHW x (padding counts as -inf)."""
    return _windows(x, kernel, stride, padding, (1, 1), -np.inf).max(axis=(4, 5))
'''

_POOL_ARGMAX = '''
def _pool_argmax(x, kernel, stride, padding):
    """Flat index into x padded of the max of each window (the first on ties), and that padded shape."""
    windows = _windows(x, kernel, stride, padding, (1, 1), -np.inf)
    n, c, oh, ow, kh, kw = windows.shape
    k = windows.reshape(n, c, oh, ow, kh * kw).argmax(axis=4)
    hp, wp = x.shape[2] + sum(padding[0]), x.shape[3] + sum(padding[1])
    rows = np.arange(oh)[:, None] * stride[0] + k // kw
    cols = np.arange(ow) * stride[1] + k % kw
    planes = np.arange(n * c).reshape(n, c, 1, 1)
    return (planes * hp + rows) * wp + cols, (n, c, hp, wp)
'''

_UNPAD = '''
def _unpad(flat, shape, padding, like):
    """A flat padded NCHW array (shape) as an array shaped like like, the padding cut off."""
    (top, _), (left, _) = padding
    return flat.reshape(shape)[:, :, top:top + like.shape[2], left:left + like.shape[3]].astype(like.dtype, copy=False)
'''

_MAX_POOL2D_GRAD = '''
def _max_pool2d_grad(ct, x, kernel, stride, padding):
    """dL/dx of _max_pool2d: each window's cotangent goes to its max (the first on ties)."""
    index, shape = _pool_argmax(x, kernel, stride, padding)
    return _unpad(np.bincount(index.ravel(), ct.ravel(), np.prod(shape)), shape, padding, x)
'''

_MAX_POOL2D_PICK = '''
def _max_pool2d_pick(u, x, kernel, stride, padding):
    """u read where x has the max of each window: the VJP of _max_pool2d_grad for its cotangent."""
    index, _ = _pool_argmax(x, kernel, stride, padding)
    return np.pad(u, ((0, 0), (0, 0)) + padding).ravel()[index]
'''

_AVG_POOL2D = '''
def _avg_pool2d(x, kernel, stride, padding):
    """The mean of each window of NCHW x (padding counts as zeros, and in the count)."""
    return _windows(x, kernel, stride, padding, (1, 1)).sum(axis=(4, 5)) / (kernel[0] * kernel[1])
'''

_AVG_POOL2D_GRAD = '''
def _avg_pool2d_grad(ct, like, kernel, stride, padding):
    """dL/dx of _avg_pool2d: each window's cotangent spread evenly over it, overlaps added."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, oh, ow = ct.shape
    hp, wp = like.shape[2] + sum(padding[0]), like.shape[3] + sum(padding[1])
    rows = (np.arange(oh) * sh)[:, None] + np.arange(kh)
    cols = (np.arange(ow) * sw)[:, None] + np.arange(kw)
    spatial = rows[:, None, :, None] * wp + cols[None, :, None, :]
    index = np.arange(n * c).reshape(n, c, 1, 1, 1, 1) * (hp * wp) + spatial
    share = np.broadcast_to((ct / (kh * kw))[..., None, None], index.shape)
    return _unpad(np.bincount(index.ravel(), share.ravel(), n * c * hp * wp), (n, c, hp, wp), padding, like)
'''


# ---- params -----------------------------------------------------------------------------------------

def _pair(value, what, low):
    """An int or a pair of ints >= low, as a pair."""
    pair = (value, value) if is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(is_int(v) and v >= low for v in pair)):
        raise ShapeError(f"{what} must be an int or a pair of ints >= {low}, got {value!r}")
    return tuple(int(v) for v in pair)


def _padding(padding, kernel, stride, dilation):
    """``((top, bottom), (left, right))`` from an int, a pair, pairs of pairs, "same" or "valid"."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        if stride != (1, 1):
            raise ShapeError(f'padding "same" needs stride 1, got stride {stride}')
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        return tuple(_pair(tuple(p), "padding", 0) for p in padding)
    return tuple((p, p) for p in _pair(padding, 'padding (an int, a pair, pairs, "same" or "valid")', 0))


def _image(x, what):
    """Check an NCHW float input with static C, H, W (the batch dim may be free)."""
    require_float(x, what)
    if x.ndim != 4 or any(map(is_free, x.shape[1:])):
        raise ShapeError(f"{what} needs an (n, channels, height, width) input with static channels, height "
                         f"and width, got {format_shape(x.shape)}")


def _axis_size(size, kernel, stride, padding, dilation, what):
    """Output size along one axis; ShapeError when the (dilated) kernel does not fit the padded input."""
    span = dilation * (kernel - 1) + 1
    padded = size + sum(padding)
    if span > padded:
        raise ShapeError(f"{what}: kernel {kernel} (dilation {dilation}, spanning {span}) is larger than the "
                         f"input {size} padded by {padding} to {padded}")
    return (padded - span) // stride + 1


def _spatial(size, kernel, stride, padding, dilation, what):
    """(out_h, out_w) of a window op over spatial ``size``."""
    return tuple(_axis_size(size[a], kernel[a], stride[a], padding[a], dilation[a], f"{what} {side}")
                 for a, side in enumerate(("height", "width")))


def _window_params(kernel, stride, padding, dilation):
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    return {"stride": stride, "padding": _padding(padding, kernel, stride, dilation), "dilation": dilation}


def _conv_params(kernel, stride, padding, dilation, groups):
    if not is_int(groups) or groups < 1:
        raise ShapeError(f"groups must be an int >= 1, got {groups!r}")
    return {**_window_params(kernel, stride, padding, dilation), "groups": int(groups)}


def _scatter_params(size, kernel, stride, padding, dilation, extra):
    """The params of col2im and conv2d_transpose, checked."""
    kernel = _pair(kernel, "kernel", 1)
    if not isinstance(extra, bool):
        raise ShapeError(f"extra must be True or False, got {extra!r}")
    return {"size": _pair(size, "size", 1), "kernel": kernel, **_window_params(kernel, stride, padding, dilation),
            "extra": extra}


def _scattered(columns, size, kernel, stride, padding, dilation, extra, what):
    """The (n, channels, h, w) shape that im2col columns shaped ``columns`` go back to; ShapeError unless they
    are the columns of this kernel over an input of spatial ``size``."""
    taps = kernel[0] * kernel[1]
    out = _spatial(size, kernel, stride, padding, dilation, what)
    if (len(columns) != 4 or any(map(is_free, columns[1:])) or (columns[2] - extra) % taps
            or columns[2] <= extra or columns[3] != out[0] * out[1]):
        raise ShapeError(f"{what}: columns {format_shape(columns)} are not the im2col columns of a {kernel} kernel "
                         f"over {size} (expected (n, groups, channels/groups * {taps}{' + 1' * extra}, "
                         f"{out[0] * out[1]}))")
    return (columns[0], columns[1] * ((columns[2] - extra) // taps)) + tuple(size)


def _conv_shape(x, w, stride, padding, dilation, groups):
    """The output shape of conv2d(x, w); ShapeError naming the numbers that do not fit."""
    _image(x, "conv2d")
    if w.ndim != 4 or any(map(is_free, w.shape)):
        raise ShapeError(f"conv2d weight must be static (out, in/groups, kh, kw), got {format_shape(w.shape)}")
    out, per_group = w.shape[:2]
    channels = x.shape[1]
    if channels % groups or out % groups:
        raise ShapeError(f"groups={groups} must divide the {channels} input channels and the {out} output channels")
    if per_group * groups != channels:
        raise ShapeError(f"weight {format_shape(w.shape)} takes {per_group} channels per group, but the input "
                         f"{format_shape(x.shape)} has {channels} = {groups} groups of {channels // groups}")
    return (x.shape[0], out) + _spatial(x.shape[2:], w.shape[2:], stride, padding, dilation, "conv2d")


def _pool_params(kernel, stride, padding):
    kernel = _pair(kernel, "kernel", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _padding(padding, kernel, stride, (1, 1))
    if any(2 * max(p) > k for p, k in zip(padding, kernel)):
        raise ShapeError(f"padding {padding} must be at most half the kernel {kernel}")
    return {"kernel": kernel, "stride": stride, "padding": padding}


def _args(*names):
    return tuple(Const(v) for v in names)


@register
class Im2col(Op):
    """y[n, g, (c, i, j), (h, w)] = x_padded[n, g*C/groups + c, h*sh + i*dh, w*sw + j*dw]: the windows of x
    as matrices, so that a convolution is one matmul per image (conv2d builds it so), and with ``extra`` a
    last row of that value (1.0: the kernel matrix's last column adds a bias in the same matmul);
    dx = col2im(ct)."""
    name = "im2col"
    public = False
    fresh = True
    helpers = {"_windows": _WINDOWS, "_im2col": _IM2COL}

    def normalize(self, x, *, kernel, stride=1, padding=0, dilation=1, groups=1, extra=None):
        kernel = _pair(kernel, "kernel", 1)
        if isinstance(extra, bool) or not (extra is None or isinstance(extra, (int, float))):
            raise ShapeError(f"extra must be None or a number, got {extra!r}")
        return {"kernel": kernel, **_conv_params(kernel, stride, padding, dilation, groups),
                "extra": None if extra is None else float(extra)}

    def infer(self, x, *, kernel, stride, padding, dilation, groups, extra):
        _image(x, "im2col")
        if x.shape[1] % groups:
            raise ShapeError(f"groups={groups} must divide the {x.shape[1]} input channels")
        out = _spatial(x.shape[2:], kernel, stride, padding, dilation, "im2col")
        rows = x.shape[1] // groups * kernel[0] * kernel[1] + (extra is not None)
        return (x.shape[0], groups, rows, out[0] * out[1]), x.dtype

    def emit(self, x, *, kernel, stride, padding, dilation, groups, extra):
        return Call(Name("_im2col"), (x, *_args(kernel, stride, padding, dilation, groups, extra)))

    def vjp(self, ct, y, x, *, groups, extra, **params):
        return (F.col2im(ct, size=x.shape[2:], extra=extra is not None, **params),)


@register
class Col2im(Op):
    """y = the adjoint of im2col for an input of spatial ``size``: each column entry added onto the input
    position it was copied from (a transposed convolution once multiplied by a kernel); with ``extra``
    the columns' last row (im2col's extra row) is dropped. Linear:  dcols = im2col(u) (0 in the extra row)."""
    name = "col2im"
    public = False
    fresh = True
    helpers = {"_out_size": _OUT_SIZE, "_tap": _TAP, "_add_taps": _ADD_TAPS, "_col2im": _COL2IM}

    def normalize(self, cols, *, size, kernel, stride, padding, dilation, extra=False):
        return _scatter_params(size, kernel, stride, padding, dilation, extra)

    def infer(self, cols, *, size, kernel, stride, padding, dilation, extra):
        return _scattered(cols.shape, size, kernel, stride, padding, dilation, extra, "col2im"), cols.dtype

    def simplify(self, cols, *, size, kernel, stride, padding, dilation, extra):
        # col2im(K^T @ ct), what conv2d's input gradient is, needs no columns: one matmul per kernel tap
        if cols.op == "matmul" and not cols.graph.nx.succ[cols.name]:
            a, ct = cols.args
            if a.op == "transpose" and a.params["axes"] == (0, 2, 1) and ct.ndim == 4:
                return F.conv2d_transpose(a.args[0], ct, size=size, kernel=kernel, stride=stride, padding=padding,
                                          dilation=dilation, extra=extra)
        return None

    def emit(self, cols, *, size, kernel, stride, padding, dilation, extra):
        return Call(Name("_col2im"), (cols, *_args(size, kernel, stride, padding, dilation, extra)))

    def vjp(self, u, y, cols, *, size, extra, **params):
        return (F.im2col(u, groups=cols.shape[1], extra=0.0 if extra else None, **params),)


@register
class Conv2dTranspose(Op):
    """y = col2im(K^T @ ct) for an input of spatial ``size``, K a (groups, out/groups, rows) kernel matrix and ct
    (n, groups, out/groups, out_h * out_w): a transposed convolution, computed one matmul per kernel tap without
    the columns (what col2im of such a product becomes, so conv2d's input gradient builds no columns).
    Bilinear:  dK = sum over n of ct @ im2col(u)^T,  dct = K @ im2col(u)  (im2col's extra row 0)."""
    name = "conv2d_transpose"
    public = False
    fresh = True
    helpers = {"_out_size": _OUT_SIZE, "_tap": _TAP, "_add_taps": _ADD_TAPS, "_conv2d_transpose": _CONV2D_TRANSPOSE}

    def normalize(self, kernel_matrix, ct, *, size, kernel, stride, padding, dilation, extra=False):
        return _scatter_params(size, kernel, stride, padding, dilation, extra)

    def infer(self, kernel_matrix, ct, *, size, kernel, stride, padding, dilation, extra):
        if kernel_matrix.ndim != 3 or any(map(is_free, kernel_matrix.shape)) or ct.ndim != 4 \
                or not all(map(dims_compatible, ct.shape[1:3], kernel_matrix.shape[:2])):
            raise ShapeError(f"conv2d_transpose: expected a (groups, out/groups, rows) kernel matrix and an (n, "
                             f"groups, out/groups, positions) cotangent, got {format_shape(kernel_matrix.shape)} and "
                             f"{format_shape(ct.shape)}")
        columns = (ct.shape[0], kernel_matrix.shape[0], kernel_matrix.shape[2], ct.shape[3])
        return (_scattered(columns, size, kernel, stride, padding, dilation, extra, "conv2d_transpose"),
                result_dtype(kernel_matrix, ct))

    def emit(self, kernel_matrix, ct, *, size, kernel, stride, padding, dilation, extra):
        return Call(Name("_conv2d_transpose"),
                    (kernel_matrix, ct, *_args(size, kernel, stride, padding, dilation, extra)))

    def vjp(self, u, y, kernel_matrix, ct, *, size, extra, **params):
        cols = F.im2col(u, groups=kernel_matrix.shape[0], extra=0.0 if extra else None, **params)
        return ct @ F.transpose(cols, (0, 1, 3, 2)), kernel_matrix @ cols


# ---- pooling ----------------------------------------------------------------------------------------

class Pool(Op):
    """A pooling op over the (kh, kw) windows of NCHW x taken every ``stride`` (default: the kernel)."""

    def normalize(self, x, *, kernel, stride=None, padding=0):
        return _pool_params(kernel, stride, padding)


    def pooled(self, x, kernel, stride, padding):
        _image(x, self.name)
        return x.shape[:2] + _spatial(x.shape[2:], kernel, stride, padding, (1, 1), self.name)

    def call(self, helper, *args, **params):
        return Call(Name(helper), (*args, *_args(*params.values())))


@register
class MaxPool2d(Pool):
    """y = the max of each window;  dx = ct routed to each window's max (the first on ties, as PyTorch)."""
    name = "max_pool2d"
    helpers = {"_windows": _WINDOWS, "_max_pool2d": _MAX_POOL2D}

    def infer(self, x, *, kernel, stride, padding):
        return self.pooled(x, kernel, stride, padding), x.dtype

    def emit(self, x, **params):
        return self.call("_max_pool2d", x, **params)

    def vjp(self, ct, y, x, **params):
        return (F.max_pool2d_grad(ct, x, **params),)


@register
class MaxPool2dGrad(Pool):
    """y = the VJP of max_pool2d(x) for ct: zeros but at each window's max. Linear in ct:
    dct = max_pool2d_pick(u, x);  x only chooses where (no gradient)."""
    name = "max_pool2d_grad"
    public = False
    helpers = {"_windows": _WINDOWS, "_pool_argmax": _POOL_ARGMAX, "_unpad": _UNPAD,
               "_max_pool2d_grad": _MAX_POOL2D_GRAD}

    def normalize(self, ct, x, *, kernel, stride=None, padding=0):
        return _pool_params(kernel, stride, padding)

    def infer(self, ct, x, *, kernel, stride, padding):
        if not all(map(dims_compatible, ct.shape, self.pooled(x, kernel, stride, padding))):
            raise ShapeError(f"cotangent {format_shape(ct.shape)} is not shaped like the pooled "
                             f"{format_shape(x.shape)}")
        return x.shape, ct.dtype

    def emit(self, ct, x, **params):
        return self.call("_max_pool2d_grad", ct, x, **params)

    def vjp(self, u, y, ct, x, **params):
        return F.max_pool2d_pick(u, x, **params), None


@register
class MaxPool2dPick(Pool):
    """y = u read at the max of each window of x (max_pool2d(x) is pick(x, x));
    du = max_pool2d_grad(ct, x);  x only chooses where (no gradient)."""
    name = "max_pool2d_pick"
    public = False
    helpers = {"_windows": _WINDOWS, "_pool_argmax": _POOL_ARGMAX, "_max_pool2d_pick": _MAX_POOL2D_PICK}

    def normalize(self, u, x, *, kernel, stride=None, padding=0):
        return _pool_params(kernel, stride, padding)

    def infer(self, u, x, *, kernel, stride, padding):
        return self.pooled(x, kernel, stride, padding), u.dtype

    def emit(self, u, x, **params):
        return self.call("_max_pool2d_pick", u, x, **params)

    def vjp(self, ct, y, u, x, **params):
        return F.max_pool2d_grad(ct, x, **params), None


@register
class AvgPool2d(Pool):
    """y = the mean of each window (zero padding counted, as PyTorch's default);  dx = ct spread evenly
    over each window."""
    name = "avg_pool2d"
    helpers = {"_windows": _WINDOWS, "_avg_pool2d": _AVG_POOL2D}

    def infer(self, x, *, kernel, stride, padding):
        return self.pooled(x, kernel, stride, padding), x.dtype

    def emit(self, x, **params):
        return self.call("_avg_pool2d", x, **params)

    def vjp(self, ct, y, x, **params):
        return (F.avg_pool2d_grad(ct, x, **params),)


@register
class AvgPool2dGrad(Pool):
    """y = the VJP of avg_pool2d for ct, shaped like ``like``. Linear in ct:  dct = avg_pool2d(u)."""
    name = "avg_pool2d_grad"
    public = False
    helpers = {"_unpad": _UNPAD, "_avg_pool2d_grad": _AVG_POOL2D_GRAD}

    def normalize(self, ct, like, *, kernel, stride=None, padding=0):
        return _pool_params(kernel, stride, padding)

    def infer(self, ct, like, *, kernel, stride, padding):
        if not all(map(dims_compatible, ct.shape, self.pooled(like, kernel, stride, padding))):
            raise ShapeError(f"cotangent {format_shape(ct.shape)} is not shaped like the pooled "
                             f"{format_shape(like.shape)}")
        return like.shape, ct.dtype

    def emit(self, ct, like, **params):
        return self.call("_avg_pool2d_grad", ct, like, **params)

    def vjp(self, u, y, ct, like, **params):
        return F.avg_pool2d(u, **params), None


# ---- public functions -------------------------------------------------------------------------------

def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, name=None):
    """2-D convolution (cross-correlation, as PyTorch's ``conv2d``) of NCHW ``x`` with ``w``.

    Args:
        x: (n, in, h, w) input; n may be a free dim.
        w: (out, in/groups, kh, kw) kernel.
        b: optional (out,) bias.
        stride, dilation: an int or an (h, w) pair.
        padding: an int, an (h, w) pair, ((top, bottom), (left, right)), "valid" (none) or "same"
            (output as large as the input; stride 1 only; an odd total puts the extra row after).
        groups: split channels into this many independent groups (groups = in is depthwise).

    Returns:
        Tensor (n, out, out_h, out_w) with out_h = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1.

    Raises:
        ShapeError: a bad kernel, stride, padding, dilation or groups for these shapes (the message
            gives the numbers), or a non-static channel or spatial dim.

    Example:
        >>> y = gc.conv2d(x, w, b, padding="same")
    """
    if not isinstance(x, Tensor):
        raise ShapeError(f"conv2d: expected a graphcomp Tensor input, got {type(x).__name__}")
    graph = x.graph
    w = graph.lift(w)
    try:
        kernel = w.shape[2:] if w.ndim == 4 and not any(map(is_free, w.shape[2:])) else (1, 1)
        params = _conv_params(kernel, stride, padding, dilation, groups)
        shape = _conv_shape(x, w, **params)
    except ShapeError as e:
        raise ShapeError(f"conv2d{'' if name is None else f' {name!r}'}: {e}") from None
    groups, out = params["groups"], shape[1]
    kernel_matrix = F.reshape(w, (groups, out // groups, -1))
    if b is not None:       # the bias is the kernel matrix's last column, against a row of ones in the columns
        kernel_matrix = concatenate([kernel_matrix, F.reshape(graph.lift(b), (groups, out // groups, 1))], axis=2)
    cols = graph.apply("im2col", (x,), {"kernel": kernel, **params, "extra": None if b is None else 1.0})
    return F.reshape(kernel_matrix @ cols, (-1,) + shape[1:], name=name)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, name=None):
    """1-D convolution of NCL ``x`` with (out, in/groups, k) ``w``: conv2d on a height-1 image.

    ``padding`` is an int, a (left, right) pair, "same" or "valid"; the rest is as for ``conv2d``.
    """
    if not isinstance(x, Tensor) or x.ndim != 3:
        shown = format_shape(x.shape) if isinstance(x, Tensor) else repr(x)
        raise ShapeError(f"conv1d needs an (n, channels, length) input, got {shown}")
    pads = padding if isinstance(padding, str) else ((0, 0), _pair(padding, "padding", 0))
    y = conv2d(F.expand_dims(x, 2), F.expand_dims(x.graph.lift(w), 2), None, (1, _single(stride, "stride")), pads,
               (1, _single(dilation, "dilation")), groups)
    if b is None:
        return F.squeeze(y, 2, name=name)
    return F.add(F.squeeze(y, 2), F.reshape(x.graph.lift(b), (-1, 1)), name=name)


def _single(value, what):
    if not is_int(value):
        raise ShapeError(f"conv1d {what} must be an int, got {value!r}")
    return int(value)


PUBLIC = {"conv1d": conv1d, "conv2d": conv2d}
