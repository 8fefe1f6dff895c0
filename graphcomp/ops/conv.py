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

_WINDOWS = '''
def _windows(x, kernel, stride, padding, dilation, value=0.0):
    """The (n, c, out_h, out_w, kh, kw) windows of NCHW x padded with value: a strided view of it."""
    if any(map(any, padding)):
        x = np.pad(x, ((0, 0), (0, 0)) + padding, constant_values=value)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    return np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
'''

_CONV2D = '''
def _conv2d(x, w, stride, padding, dilation, groups):
    """Cross-correlation of NCHW x with (out, in/groups, kh, kw) w: its windows contracted in one einsum."""
    windows = _windows(x, w.shape[2:], stride, padding, dilation)
    if groups == 1:
        return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
    n, c, oh, ow, kh, kw = windows.shape
    windows = windows.reshape(n, groups, c // groups, oh, ow, kh, kw)
    w = w.reshape(groups, -1, c // groups, kh, kw)
    return np.einsum("ngchwij,gocij->ngohw", windows, w, optimize=True).reshape(n, -1, oh, ow)
'''

_CONV2D_GRAD_WEIGHT = '''
def _conv2d_grad_weight(x, ct, kernel, stride, padding, dilation, groups):
    """dL/dw of _conv2d: x's windows against the cotangent, summed over the batch and positions."""
    windows = _windows(x, kernel, stride, padding, dilation)
    n, c, oh, ow, kh, kw = windows.shape
    if groups == 1:       # one matmul of (out, n*oh*ow) by (n*oh*ow, c*kh*kw): faster here than einsum's own order
        cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, -1)
        return (ct.transpose(1, 0, 2, 3).reshape(ct.shape[1], -1) @ cols.T).reshape(-1, c, kh, kw)
    windows = windows.reshape(n, groups, c // groups, oh, ow, kh, kw)
    ct = ct.reshape(n, groups, -1, oh, ow)
    return np.einsum("ngchwij,ngohw->gocij", windows, ct, optimize=True).reshape(-1, c // groups, kh, kw)
'''

_CONV2D_GRAD_INPUT = '''
def _conv2d_grad_input(ct, w, size, stride, padding, dilation, groups):
    """dL/dx of _conv2d: each kernel tap's share of the input (one matmul for all taps), added back at the
    positions that tap read (a loop over the kh * kw taps), and the padding cut off again."""
    (sh, sw), (dh, dw), ((top, bottom), (left, right)) = stride, dilation, padding
    n, o, oh, ow = ct.shape
    per_group, kh, kw = w.shape[1:]
    ct = ct.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)
    w = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    taps = (w @ ct).reshape(groups * per_group, kh, kw, n, oh, ow)
    dx = np.zeros((groups * per_group, n, size[0] + top + bottom, size[1] + left + right), taps.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw] += taps[:, i, j]
    return dx[:, :, top:top + size[0], left:left + size[1]].transpose(1, 0, 2, 3)
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


def _out_size(size, kernel, stride, padding, dilation, what):
    """Output size along one axis; ShapeError when the (dilated) kernel does not fit the padded input."""
    span = dilation * (kernel - 1) + 1
    padded = size + sum(padding)
    if span > padded:
        raise ShapeError(f"{what}: kernel {kernel} (dilation {dilation}, spanning {span}) is larger than the "
                         f"input {size} padded by {padding} to {padded}")
    return (padded - span) // stride + 1


def _conv_params(kernel, stride, padding, dilation, groups):
    stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    if not is_int(groups) or groups < 1:
        raise ShapeError(f"groups must be an int >= 1, got {groups!r}")
    return {"stride": stride, "padding": _padding(padding, kernel, stride, dilation), "dilation": dilation,
            "groups": int(groups)}


def _fits_conv(ct, size, kernel, stride, padding, dilation, what):
    """ShapeError unless ``ct`` has the spatial dims conv2d gives an input of ``size`` (a conv's VJP op
    from a graph file may hold any params)."""
    if ct.ndim != 4 or len(size) != 2 or len(kernel) != 2:
        raise ShapeError(f"{what}: expected a 4-d cotangent and 2-d size and kernel, got {format_shape(ct.shape)}, "
                         f"{size!r} and {kernel!r}")
    out = tuple(_out_size(size[i], kernel[i], stride[i], padding[i], dilation[i], what) for i in range(2))
    if any(not is_free(d) and d != o for d, o in zip(ct.shape[2:], out)):
        raise ShapeError(f"{what}: the cotangent {format_shape(ct.shape)} does not fit a conv2d output of spatial "
                         f"size {out}")


def _conv_shape(x, w, stride, padding, dilation, groups):
    """The output shape of conv2d(x, w); ShapeError naming the numbers that do not fit."""
    _image(x, "conv2d")
    if w.ndim != 4 or any(map(is_free, w.shape)):
        raise ShapeError(f"conv2d weight must be static (out, in/groups, kh, kw), got {format_shape(w.shape)}")
    out, per_group, kh, kw = w.shape
    channels = x.shape[1]
    if channels % groups or out % groups:
        raise ShapeError(f"groups={groups} must divide the {channels} input channels and the {out} output channels")
    if per_group * groups != channels:
        raise ShapeError(f"weight {format_shape(w.shape)} takes {per_group} channels per group, but the input "
                         f"{format_shape(x.shape)} has {channels} = {groups} groups of {channels // groups}")
    oh = _out_size(x.shape[2], kh, stride[0], padding[0], dilation[0], "conv2d height")
    ow = _out_size(x.shape[3], kw, stride[1], padding[1], dilation[1], "conv2d width")
    return (x.shape[0], out, oh, ow)


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
class Conv2d(Op):
    """y[n, o] = sum over c, i, j of x_padded[n, g*C/groups + c, h*sh + i*dh, w*sw + j*dw] * w[o, c, i, j]
    (cross-correlation, as PyTorch);  dx = conv2d_grad_input(ct, w),  dw = conv2d_grad_weight(x, ct)."""
    name = "conv2d"
    public = False
    helpers = {"_windows": _WINDOWS, "_conv2d": _CONV2D}

    def normalize(self, x, w, *, stride=1, padding=0, dilation=1, groups=1):
        kernel = w.shape[2:] if w.ndim == 4 and not any(map(is_free, w.shape[2:])) else (1, 1)
        return _conv_params(kernel, stride, padding, dilation, groups)

    def infer(self, x, w, *, stride, padding, dilation, groups):
        return _conv_shape(x, w, stride, padding, dilation, groups), result_dtype(x, w)

    def emit(self, x, w, *, stride, padding, dilation, groups):
        return Call(Name("_conv2d"), (x, w, *_args(stride, padding, dilation, groups)))

    def vjp(self, ct, y, x, w, **params):
        return (F.conv2d_grad_input(ct, w, size=x.shape[2:], **params),
                F.conv2d_grad_weight(x, ct, kernel=w.shape[2:], **params))


@register
class Conv2dGradInput(Op):
    """y = the VJP of conv2d for its input (a transposed convolution): each tap's share of ct added back
    where the tap read, for an input of spatial ``size``.
    Linear in ct and w:  dct = conv2d(u, w),  dw = conv2d_grad_weight(u, ct)."""
    name = "conv2d_grad_input"
    public = False
    helpers = {"_conv2d_grad_input": _CONV2D_GRAD_INPUT}

    def normalize(self, ct, w, *, size, stride, padding, dilation, groups):
        # NOTE: conv2d's VJP builds these params; a graph file may hold any, so they are checked like conv2d's
        kernel = w.shape[2:] if w.ndim == 4 and not any(map(is_free, w.shape[2:])) else (1, 1)
        return {"size": _pair(size, "size", 0), **_conv_params(kernel, stride, padding, dilation, groups)}

    def infer(self, ct, w, *, size, stride, padding, dilation, groups):
        _fits_conv(ct, size, w.shape[2:], stride, padding, dilation, "conv2d_grad_input")
        return (ct.shape[0], w.shape[1] * groups) + tuple(size), result_dtype(ct, w)

    def emit(self, ct, w, *, size, stride, padding, dilation, groups):
        return Call(Name("_conv2d_grad_input"), (ct, w, *_args(size, stride, padding, dilation, groups)))

    def vjp(self, u, y, ct, w, *, size, **params):
        return F.conv2d(u, w, **params), F.conv2d_grad_weight(u, ct, kernel=w.shape[2:], **params)


@register
class Conv2dGradWeight(Op):
    """y = the VJP of conv2d for its weight: x's windows against ct, summed over batch and positions.
    Linear in x and ct:  dx = conv2d_grad_input(ct, v),  dct = conv2d(x, v)."""
    name = "conv2d_grad_weight"
    public = False
    helpers = {"_windows": _WINDOWS, "_conv2d_grad_weight": _CONV2D_GRAD_WEIGHT}

    def normalize(self, x, ct, *, kernel, stride, padding, dilation, groups):
        kernel = _pair(kernel, "kernel", 1)
        return {"kernel": kernel, **_conv_params(kernel, stride, padding, dilation, groups)}

    def infer(self, x, ct, *, kernel, stride, padding, dilation, groups):
        _fits_conv(ct, x.shape[2:], kernel, stride, padding, dilation, "conv2d_grad_weight")
        return (ct.shape[1], x.shape[1] // groups) + tuple(kernel), result_dtype(x, ct)

    def emit(self, x, ct, *, kernel, stride, padding, dilation, groups):
        return Call(Name("_conv2d_grad_weight"), (x, ct, *_args(kernel, stride, padding, dilation, groups)))

    def vjp(self, v, y, x, ct, *, kernel, **params):
        return F.conv2d_grad_input(ct, v, size=x.shape[2:], **params), F.conv2d(x, v, **params)


# ---- pooling ----------------------------------------------------------------------------------------

class Pool(Op):
    """A pooling op over the (kh, kw) windows of NCHW x taken every ``stride`` (default: the kernel)."""

    def normalize(self, x, *, kernel, stride=None, padding=0):
        return _pool_params(kernel, stride, padding)


    def pooled(self, x, kernel, stride, padding):
        _image(x, self.name)
        oh, ow = (_out_size(x.shape[a], kernel[k], stride[k], padding[k], 1, f"{self.name} {side}")
                  for k, (a, side) in enumerate(((2, "height"), (3, "width"))))
        return (*x.shape[:2], oh, ow)

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
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if b is None:
        return _apply("conv2d", (x, w), params, name)
    y = _apply("conv2d", (x, w), params, None)
    return F.add(y, F.reshape(y.graph.lift(b), (-1, 1, 1)), name=name)


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


def _apply(op, args, params, name):
    if not isinstance(args[0], Tensor):
        raise ShapeError(f"{op}: expected a graphcomp Tensor input, got {type(args[0]).__name__}")
    graph = args[0].graph
    return graph.apply(op, tuple(graph.lift(a) for a in args), params, name)


PUBLIC = {"conv1d": conv1d, "conv2d": conv2d}
