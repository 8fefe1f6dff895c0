"""Matrix products and shape ops (transpose, reshape, broadcast, expand/squeeze); imports graph, op, shapes, codegen.ir."""
import math

import numpy as np

from ..codegen.ir import Attr, BinOp, Const, np_call
from ..errors import ShapeError
from ..graph import apply
from ..op import Op, register, result_dtype
from ..shapes import broadcast_shapes, dims_compatible, format_shape, is_free, is_int, normalize_axes


@register
class MatMul(Op):
    """y = a @ b for 2-D or batched (..., n, k) @ (..., k, m);  da = ct @ b^T,  db = a^T @ ct."""
    name = "matmul"

    def infer(self, a, b):
        shown = f"{format_shape(a.shape)} @ {format_shape(b.shape)}"
        if a.ndim < 2 or b.ndim < 2:
            raise ShapeError(f"{shown}: matmul needs 2-D or batched operands")
        if not dims_compatible(a.shape[-1], b.shape[-2]):
            raise ShapeError(f"{shown}: inner dims {a.shape[-1]!r} != {b.shape[-2]!r}")
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], what=f"{shown} batch dims")
        return batch + (a.shape[-2], b.shape[-1]), result_dtype(a, b)

    def emit(self, a, b):
        return BinOp("@", a, b)

    def formula(self, a, b):
        return f"{a} @ {b}"

    def vjp(self, ct, y, a, b):
        return ct @ matrix_transpose(b), matrix_transpose(a) @ ct


def matrix_transpose(x):
    """Swap the last two axes."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, axes)


@register
class Transpose(Op):
    """y = x with axes permuted (reversed by default);  dx = ct permuted back."""
    name = "transpose"
    view = True
    inline = True

    def normalize(self, x, *, axes):
        if axes is None:
            return {"axes": tuple(reversed(range(x.ndim)))}
        perm = normalize_axes(axes, x.ndim, ordered=True) if isinstance(axes, (tuple, list)) else None
        if perm is None or sorted(perm) != list(range(x.ndim)):
            raise ShapeError(f"axes {axes!r} are not a permutation of the {x.ndim} axes "
                             f"of {format_shape(x.shape)}")
        return {"axes": perm}

    def infer(self, x, *, axes):
        return tuple(x.shape[a] for a in axes), x.dtype

    def simplify(self, x, *, axes):
        return x if axes == tuple(range(x.ndim)) else None

    def emit(self, x, *, axes):
        if axes == tuple(reversed(range(len(axes)))):
            return Attr(x, "T")
        return np_call("transpose", x, Const(axes))

    def formula(self, x, *, axes):
        return f"{x}.T" if axes == tuple(reversed(range(len(axes)))) else f"transpose({x}, {axes})"

    def vjp(self, ct, y, x, *, axes):
        return (transpose(ct, tuple(int(i) for i in np.argsort(axes))),)


@register
class Reshape(Op):
    """y = x reshaped; at most one -1 (inferred) dim;  dx = ct reshaped back."""
    name = "reshape"
    view = True

    def normalize(self, x, *, shape):
        dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
        if (not isinstance(dims, (tuple, list)) or not all(is_int(d) and d >= -1 for d in dims)
                or list(dims).count(-1) > 1):
            raise ShapeError(f"target shape {shape!r} must be ints >= 0 with at most one -1")
        return {"shape": tuple(int(d) for d in dims)}

    def infer(self, x, *, shape):
        free = [d for d in x.shape if is_free(d)]
        known = math.prod(d for d in x.shape if not is_free(d))
        target = math.prod(d for d in shape if d != -1)
        shown = f"{format_shape(x.shape)} to {shape!r}"
        if -1 in shape:
            if free:
                if len(free) > 1 or (target and known % target):
                    raise ShapeError(f"cannot reshape {shown}: the -1 dim is ambiguous")
                if known != target:
                    raise ShapeError(f"cannot reshape {shown}: the -1 dim must take the free "
                                     f"dim {free[0]!r} alone (sizes {known} and {target} differ)")
                fill = free[0]
            elif target == 0 or known % target:
                raise ShapeError(f"cannot reshape {shown}: {known} elements do not divide by {target}")
            else:
                fill = known // target
            return tuple(fill if d == -1 else d for d in shape), x.dtype
        if free or known != target:
            raise ShapeError(f"cannot reshape {shown}: sizes differ (use -1 for a free dim)")
        return shape, x.dtype

    def emit(self, x, *, shape):
        return np_call("reshape", x, Const(shape))

    def vjp(self, ct, y, x, *, shape):
        if sum(map(is_free, x.shape)) > 1:
            return (reshape_like(ct, x),)
        return (reshape(ct, tuple(-1 if is_free(d) else d for d in x.shape)),)


@register
class ReshapeLike(Op):
    """y = x reshaped to the run-time shape of ``like``; no gradient for ``like``."""
    name = "reshape_like"
    view = True

    def infer(self, x, like):
        return like.shape, x.dtype

    def emit(self, x, like):
        return np_call("reshape", x, Attr(like, "shape"))

    def vjp(self, ct, y, x, like):
        return reshape_like(ct, x), None


@register
class BroadcastLike(Op):
    """y = x broadcast to the run-time shape of ``like`` (a read-only view);  dx = ct summed back."""
    name = "broadcast_like"
    view = True

    def infer(self, x, like):
        shape = broadcast_shapes(x.shape, like.shape)
        if len(shape) != like.ndim or any(not dims_compatible(s, d) for s, d in zip(shape, like.shape)):
            raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(like.shape)}")
        return like.shape, x.dtype

    def emit(self, x, like):
        return np_call("broadcast_to", x, Attr(like, "shape"))

    def vjp(self, ct, y, x, like):
        return ct, None      # grad un-broadcasts ct to x's shape


@register
class ExpandDims(Op):
    """y = x with size-1 axes inserted at ``axis`` (axes of the output);  dx = squeeze(ct)."""
    name = "expand_dims"
    view = True

    def normalize(self, x, *, axis):
        return {"axis": normalize_axes(axis, x.ndim + len(_as_tuple(axis)))}

    def infer(self, x, *, axis):
        dims = iter(x.shape)
        return tuple(1 if i in axis else next(dims) for i in range(x.ndim + len(axis))), x.dtype

    def emit(self, x, *, axis):
        return np_call("expand_dims", x, Const(axis[0] if len(axis) == 1 else axis))

    def vjp(self, ct, y, x, *, axis):
        return (squeeze(ct, axis),)


@register
class Squeeze(Op):
    """y = x with the size-1 axes ``axis`` removed;  dx = expand_dims(ct)."""
    name = "squeeze"
    view = True

    def normalize(self, x, *, axis):
        axis = normalize_axes(axis, x.ndim)
        bad = [a for a in axis if x.shape[a] != 1]
        if bad:
            raise ShapeError(f"cannot squeeze axes {bad} of {format_shape(x.shape)}: size is not 1")
        return {"axis": axis}

    def infer(self, x, *, axis):
        return tuple(d for i, d in enumerate(x.shape) if i not in axis), x.dtype

    def emit(self, x, *, axis):
        return np_call("squeeze", x, Const(axis[0] if len(axis) == 1 else axis))

    def vjp(self, ct, y, x, *, axis):
        return (expand_dims(ct, axis),)


def _as_tuple(axis):
    return (axis,) if isinstance(axis, int) else tuple(axis)


def matmul(a, b, *, name=None):
    """Matrix product of 2-D or batched operands (``a @ b``)."""
    return apply("matmul", (a, b), {}, name)


def transpose(x, axes=None, *, name=None):
    """Permute axes; reverses them by default (``x.T``)."""
    return apply("transpose", (x,), {"axes": axes}, name)


def reshape(x, shape, *, name=None):
    """Reshape; one dim may be -1 (it may stand for a free dim)."""
    return apply("reshape", (x,), {"shape": shape}, name)


def reshape_like(x, like, *, name=None):
    """Reshape x to like's run-time shape."""
    return apply("reshape_like", (x, like), {}, name)


def broadcast_like(x, like, *, name=None):
    """Broadcast x to like's run-time shape."""
    return apply("broadcast_like", (x, like), {}, name)


def expand_dims(x, axis, *, name=None):
    """Insert size-1 axes at the output positions ``axis``."""
    return apply("expand_dims", (x,), {"axis": axis}, name)


def squeeze(x, axis, *, name=None):
    """Remove the size-1 axes ``axis``."""
    return apply("squeeze", (x,), {"axis": axis}, name)
