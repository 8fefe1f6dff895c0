"""Matrix products and shape ops (transpose, reshape, broadcast, expand/squeeze); imports graph, op, shapes,
codegen.ir and notation."""
import math

import numpy as np

from .. import notation
from ..codegen.ir import Attr, BinOp, Const, np_call
from ..errors import ShapeError
from ..graph import F
from ..op import Op, register, result_dtype
from ..shapes import broadcast_shapes, dims_compatible, format_shape, is_free, is_int, normalize_axes


@register
class MatMul(Op):
    """y = a @ b with NumPy's rules: (..., n, k) @ (..., k, m), and a 1-D operand is a vector;
    da = ct @ b^T,  db = a^T @ ct (vectors taken as one-row / one-column matrices; a 2-D b that
    every batch entry of a shares gets the sum over them as one matmul of a's and ct's rows)."""
    name = "matmul"
    maps_leading_axes = True

    def math(self, shapes, a, b):
        if len(shapes[1]) == 2 and len(shapes[2]) == 2:
            return notation.matmul(a, b)
        return notation.apply("matmul", shapes[0], a, b)

    def infer(self, a, b):
        shown = f"{format_shape(a.shape)} @ {format_shape(b.shape)}"
        if a.ndim < 1 or b.ndim < 1:
            raise ShapeError(f"{shown}: matmul needs operands of at least 1 dim (use mul for scalars)")
        inner = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if not dims_compatible(a.shape[-1], inner):
            raise ShapeError(f"{shown}: inner dims {a.shape[-1]!r} != {inner!r}")
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], what=f"{shown} batch dims")
        return batch + a.shape[-2:-1] + b.shape[-1:] * (b.ndim > 1), result_dtype(a, b)

    def emit(self, a, b):
        return BinOp("@", a, b)

    def formula(self, a, b):
        return f"{a} @ {b}"

    def vjp(self, ct, y, a, b):
        if a.ndim > 2 and b.ndim == 2:          # b is shared by every batch entry: one matmul over all of them
            rows = F.reshape(a, (-1, a.shape[-1]))
            return ct @ matrix_transpose(b), matrix_transpose(rows) @ F.reshape(ct, (-1, ct.shape[-1]))
        if (1 < a.ndim < ct.ndim and b.ndim > 1 and not is_free(b.shape[-2]) and not is_free(ct.shape[-2])
                and b.shape[-2] > ct.shape[-2]):
            # a is shared by every batch entry (a conv's kernel against each image's im2col columns): its
            # gradient sums one product per entry, each computed as (b @ ct^T)^T so that BLAS gets the larger
            # operand on the left: 20-30% faster in float32 on OpenBLAS (docs/performance.md)
            return matrix_transpose(b @ matrix_transpose(ct)), matrix_transpose(a) @ ct
        if a.ndim > 1 and b.ndim > 1:
            return ct @ matrix_transpose(b), matrix_transpose(a) @ ct
        if a.ndim == 1 and b.ndim == 1:          # y = a . b
            return ct * b, ct * a
        if a.ndim == 2:                          # (n, k) @ (k,): da = outer(ct, b)
            return F.expand_dims(ct, 1) * b, a.T @ ct
        if b.ndim == 2:                          # (k,) @ (k, m): db = outer(a, ct)
            return b @ ct, F.expand_dims(a, 1) * ct
        # a vector operand is a one-row (a) or one-column (b) matrix whose axis y lacks
        a2 = a if a.ndim > 1 else F.expand_dims(a, 0)
        b2 = b if b.ndim > 1 else F.expand_dims(b, 1)
        ndim = max(a2.ndim, b2.ndim)
        ct2 = F.expand_dims(ct, (ndim - 2,) * (a.ndim == 1) + (ndim - 1,) * (b.ndim == 1))
        da, db = ct2 @ matrix_transpose(b2), matrix_transpose(a2) @ ct2
        return (da if a.ndim > 1 else F.squeeze(da, da.ndim - 2),
                db if b.ndim > 1 else F.squeeze(db, db.ndim - 1))


def matrix_transpose(x):
    """Swap the last two axes."""
    return F.transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


@register
class Transpose(Op):
    """y = x with axes permuted (reversed by default);  dx = ct permuted back."""
    name = "transpose"

    def math(self, shapes, x, *, axes):
        return notation.transpose(x) if axes == (1, 0) else notation.apply("transpose", shapes[0], x, axes=axes)
    inline = True

    def normalize(self, x, *, axes=None):
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
        if x.op == "transpose":        # one permutation, not a chain of them
            return F.transpose(x.args[0], tuple(x.params["axes"][a] for a in axes))
        # (a @ b).T = b.T @ a.T when nothing else reads a @ b: the gradient of a transposed weight (h @ W.T)
        # then comes out in W's layout, and adding it up reads memory in order instead of across it
        if x.op == "matmul" and x.ndim == 2 and all(a.ndim == 2 for a in x.args) and not x.graph.nx.succ[x.name]:
            a, b = x.args
            return F.matmul(F.transpose(b), F.transpose(a))
        return x if axes == tuple(range(x.ndim)) else None

    def emit(self, x, *, axes):
        if axes == tuple(reversed(range(len(axes)))):
            return Attr(x, "T")
        return np_call("transpose", x, Const(axes))

    def formula(self, x, *, axes):
        return f"{x}.T" if axes == tuple(reversed(range(len(axes)))) else f"transpose({x}, {axes})"

    def vjp(self, ct, y, x, *, axes):
        return (F.transpose(ct, tuple(int(i) for i in np.argsort(axes))),)


@register
class Reshape(Op):
    """y = x reshaped; at most one -1 (inferred) dim;  dx = ct reshaped back."""
    name = "reshape"
    view = True

    def math(self, shapes, x, *, shape):
        return notation.reshape(shapes[0], shapes[1], x)

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
            if len(free) == 1 and known == target:
                fill = free[0]
            elif free:      # e.g. (None, 3) to (-1,): a new free dim; NumPy checks the sizes when run
                fill = x.graph.free_dim()
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
        return (reshape_as(ct, x),)


@register
class ReshapeLike(Op):
    """y = x reshaped to the run-time shape of ``like``; no gradient for ``like``."""
    name = "reshape_like"
    view = True

    def math(self, shapes, x, like):
        return notation.reshape(shapes[0], shapes[1], x)

    def infer(self, x, like):
        return like.shape, x.dtype

    def emit(self, x, like):
        return np_call("reshape", x, Attr(like, "shape"))

    def vjp(self, ct, y, x, like):
        return reshape_as(ct, x), None


def reshape_as(ct, x):
    """``ct`` reshaped to x's shape: a static reshape unless x has free dims."""
    return F.reshape_like(ct, x) if any(map(is_free, x.shape + ct.shape)) else F.reshape(ct, x.shape)


def broadcast_as(ct, x):
    """``ct`` broadcast to x's shape: to a static shape unless x has free dims."""
    return F.broadcast_like(ct, x) if any(map(is_free, x.shape)) else F.broadcast_to(ct, x.shape)


@register
class BroadcastTo(Op):
    """y = x broadcast to the static ``shape`` (a read-only view);  dx = ct summed back."""
    name = "broadcast_to"

    def math(self, shapes, x, *, shape):
        return notation.matrix(x, shapes[0])
    broadcast = True

    def normalize(self, x, *, shape):
        if not isinstance(shape, (tuple, list)) or not all(is_int(d) and d >= 0 for d in shape):
            raise ShapeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
        return {"shape": tuple(int(d) for d in shape)}

    def infer(self, x, *, shape):
        if broadcast_shapes(x.shape, shape) != shape:
            raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}")
        return shape, x.dtype

    def emit(self, x, *, shape):
        return np_call("broadcast_to", x, Const(shape))

    def vjp(self, ct, y, x, *, shape):
        return (ct,)      # grad un-broadcasts ct to x's shape


@register
class BroadcastLike(Op):
    """y = x broadcast to the run-time shape of ``like`` (a read-only view);  dx = ct summed back."""
    name = "broadcast_like"

    def math(self, shapes, x, like):
        return notation.matrix(x, shapes[0])
    broadcast = True

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

    def math(self, shapes, x, *, axis):
        return notation.reshape(shapes[0], shapes[1], x)

    def normalize(self, x, *, axis):
        count = 1 if is_int(axis) else len(axis) if isinstance(axis, (tuple, list)) else 0
        return {"axis": normalize_axes(axis, x.ndim + count)}

    def infer(self, x, *, axis):
        dims = iter(x.shape)
        return tuple(1 if i in axis else next(dims) for i in range(x.ndim + len(axis))), x.dtype

    def emit(self, x, *, axis):
        return np_call("expand_dims", x, Const(axis[0] if len(axis) == 1 else axis))

    def vjp(self, ct, y, x, *, axis):
        return (F.squeeze(ct, axis),)


@register
class Squeeze(Op):
    """y = x with the size-1 axes ``axis`` removed;  dx = expand_dims(ct)."""
    name = "squeeze"
    view = True

    def math(self, shapes, x, *, axis):
        return notation.reshape(shapes[0], shapes[1], x)

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
        return (F.expand_dims(ct, axis),)
