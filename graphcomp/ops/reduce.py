"""Reductions over axes (sum, mean, max) and the element count they need; imports graph, op, shapes,
codegen.ir, notation."""
import math

import numpy as np

from .. import notation
from ..codegen.ir import Attr, BinOp, Call, Const, Index, np_call
from ..graph import F, apply
from ..op import Op, no_gradient, register
from ..shapes import is_free, normalize_axes
from .linalg import broadcast_as


class Reduction(Op):
    """Reduce over ``axis`` (None: all); ``keepdims`` keeps them as size 1."""

    func = ""

    def normalize(self, x, *, axis=None, keepdims=False):
        return {"axis": normalize_axes(axis, x.ndim), "keepdims": bool(keepdims)}

    def infer(self, x, *, axis, keepdims):
        if keepdims:
            return tuple(1 if i in axis else d for i, d in enumerate(x.shape)), self.dtype(x)
        return tuple(d for i, d in enumerate(x.shape) if i not in axis), self.dtype(x)

    def dtype(self, x):
        return x.dtype

    def emit(self, x, *, axis, keepdims):
        kwargs = {"axis": Const(axis[0] if len(axis) == 1 else axis)}
        if keepdims:
            kwargs["keepdims"] = Const(True)
        if isinstance(x, Const):
            return np_call(self.func, x, **kwargs)
        # NOTE: the ndarray method, not np.<func>: it skips NumPy's Python-level dispatch (~1 us a call).
        return Call(Attr(x, self.func), (), tuple(kwargs.items()))

    def formula(self, x, *, axis, keepdims):
        return super().formula(x, axis=axis, **({"keepdims": True} if keepdims else {}))

    @staticmethod
    def expand(ct, axis, keepdims):
        """ct with the reduced axes back as size 1 (not needed for leading axes: they broadcast)."""
        if keepdims or axis == tuple(range(len(axis))):
            return ct
        return F.expand_dims(ct, axis)


@register
class Sum(Reduction):
    """y = sum of x over axes;  dx = ct broadcast back over them."""
    name = func = "sum"

    def math(self, shapes, x, *, axis, keepdims):
        return notation.total(shapes[1], x, axis, keepdims)

    def dtype(self, x):
        return np.sum(np.zeros(1, x.dtype)).dtype.name

    def vjp(self, ct, y, x, *, axis, keepdims):
        return (broadcast_as(self.expand(ct, axis, keepdims), x),)


@register
class Mean(Reduction):
    """y = mean of x over axes;  dx = ct / n broadcast back (n = elements reduced)."""
    name = func = "mean"

    def math(self, shapes, x, *, axis, keepdims):
        return notation.total(shapes[1], x, axis, keepdims) / notation.dim_product(shapes[1], axis)

    def dtype(self, x):
        return np.result_type(x.dtype, 0.0).name

    def emit(self, x, *, axis, keepdims):
        if isinstance(x, Const):
            return super().emit(x, axis=axis, keepdims=keepdims)
        # NOTE: sum / n rather than ndarray.mean, whose Python-level wrapper costs ~2 us a call
        total = Sum().emit(x, axis=axis, keepdims=keepdims)
        return BinOp("/", total, size_expr(x, axis))

    def vjp(self, ct, y, x, *, axis, keepdims):
        return (broadcast_as(self.expand(ct, axis, keepdims) / count(x, axis), x),)


@register
class Max(Reduction):
    """y = max of x over axes;  dx = ct at the maxima, split evenly among ties."""
    name, func = "max", "max"

    def vjp(self, ct, y, x, *, axis, keepdims):
        hit = F.cast(F.equal(x, self.expand(y, axis, keepdims)), x.dtype)
        share = self.expand(ct, axis, keepdims) / F.sum(hit, axis, keepdims=True)
        return (hit * share,)


@register
class Count(Op):
    """y = number of elements of x over ``axis`` at run time (a Python int)."""
    name = "count"

    def math(self, shapes, x, *, axis):
        return notation.dim_product(shapes[1], axis)
    public = False
    vjp = no_gradient

    def weak(self, *, axis):
        return True

    def normalize(self, x, *, axis):
        # NOTE: the VJPs of mean and the losses build it; a graph file may hold any axis, so it is checked
        return {"axis": normalize_axes(axis, x.ndim, ordered=True)}

    def infer(self, x, *, axis):
        return (), "int64"

    def emit(self, x, *, axis):
        return size_expr(x, axis)


def size_expr(x, axis):
    """IR for the number of elements of ``x`` over ``axis``: ``x.shape[0] * x.shape[2]``."""
    if not axis:
        return Const(1)
    dims = [Index(Attr(x, "shape"), Const(a)) for a in axis]
    expr = dims[0]
    for d in dims[1:]:
        expr = BinOp("*", expr, d)
    return expr


def count(x, axis):
    """Elements of x over ``axis``: a constant when those dims are static."""
    dims = [x.shape[a] for a in axis]
    if any(is_free(d) for d in dims):
        return apply("count", (x,), {"axis": tuple(axis)})
    return x.graph.constant(math.prod(dims))
