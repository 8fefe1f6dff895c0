"""Ops indexed by a run-time integer (what loop bodies use): unit cotangents and rows; imports graph, op, codegen.ir."""
import math

import numpy as np

from ..codegen.ir import Attr, Call, Const, Index, Name, np_attr, np_call
from ..errors import DTypeError, ShapeError
from ..graph import F, dtype_name
from ..op import Op, no_gradient, register
from ..shapes import is_int

_UNROW = '''
def _unrow(ct, i, like):
    """Zeros shaped like like, with row i set to ct."""
    out = np.zeros(like.shape, ct.dtype)
    out[i] = ct
    return out
'''


def require_index(i, what):
    if i.shape != () or np.dtype(i.dtype).kind not in "iu":
        raise DTypeError(f"{what}: index {i.name!r} must be an integer scalar, got {i.dtype} {i.shape}")


@register
class Unit(Op):
    """y = zeros of ``shape`` with a 1 at flat index i: the i-th unit cotangent."""
    name = "unit"
    public = False
    vjp = no_gradient

    def normalize(self, i, *, shape, dtype):
        # NOTE: jacobian builds it; a graph file may hold any params, so they are checked
        if not isinstance(shape, tuple) or not all(is_int(d) and d >= 0 for d in shape):
            raise ShapeError(f"shape must be a tuple of static dims, got {shape!r}")
        if dtype_name(dtype, self.name) != dtype or np.dtype(dtype).kind != "f":
            raise DTypeError(f"dtype must be a float dtype name, got {dtype!r}")
        return {"shape": shape, "dtype": dtype}

    def infer(self, i, *, shape, dtype):
        require_index(i, self.name)
        return shape, dtype

    def emit(self, i, *, shape, dtype):
        row = np_call("eye", Const(1), Const(math.prod(shape)), i, dtype=np_attr(dtype))
        return Call(Attr(row, "reshape"), (Const(shape),))


@register
class Row(Op):
    """y = x[i] for a run-time integer i;  dx = ct put back in row i of zeros."""
    name = "row"
    public = False

    def infer(self, x, i):
        require_index(i, self.name)
        return x.shape[1:], x.dtype

    def emit(self, x, i):
        return Index(x, i)

    def formula(self, x, i):
        return f"{x}[{i}]"

    def vjp(self, ct, y, x, i):
        return F.unrow(ct, i, x), None


@register
class Unrow(Op):
    """y = zeros shaped like ``like`` with row i set to x;  dx = ct[i]."""
    name = "unrow"
    public = False
    helpers = {"_unrow": _UNROW}

    def infer(self, x, i, like):
        require_index(i, self.name)
        return like.shape, x.dtype

    def emit(self, x, i, like):
        return Call(Name("_unrow"), (x, i, like))

    def vjp(self, ct, y, x, i, like):
        return F.row(ct, i), None, None
