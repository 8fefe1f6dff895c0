"""Leaf ops (input, param, constant) and zeros; imports graph, op, codegen.ir, notation."""
import numpy as np

from .. import notation
from ..codegen.ir import Call, Const, np_attr, np_call
from ..errors import DTypeError
from ..op import Op, no_gradient, register


class Leaf(Op):
    """A value fed at run time: an argument of the generated function."""

    leaf = True
    public = False

    def infer(self, *, shape, dtype):
        return shape, dtype


@register
class Input(Leaf):
    """Data fed at run time (features, labels)."""
    name = "input"


@register
class Param(Leaf):
    """A trainable parameter fed at run time and updated by training."""
    name = "param"


@register
class Constant(Op):
    """A value fixed in the graph: a Python scalar (weakly typed literal) or an array."""
    name = "constant"
    inline = True
    public = False

    def math(self, shapes, *, value, dtype):
        return notation.constant(value)

    def weak(self, *, value, dtype):
        return not isinstance(value, np.ndarray)

    def normalize(self, *, value, dtype):
        # NOTE: Graph.constant keeps these together; a graph file is checked here, where the op is
        python_scalar = isinstance(value, (bool, int, float))
        if not python_scalar and not isinstance(value, np.ndarray):
            raise DTypeError(f"value must be a Python number or bool or a NumPy array, got {type(value).__name__}")
        found = np.asarray(value).dtype
        try:
            declared = np.dtype(dtype)
        except TypeError:
            raise DTypeError(f"param dtype {dtype!r} is not a NumPy dtype") from None
        # a Python scalar is weakly typed: its dtype may be any of its kind (check.py's float32 literals)
        fits = found.kind == declared.kind if python_scalar else found == declared
        if found.kind not in "biuf" or not fits or declared.name != dtype:
            raise DTypeError(f"value {value!r} is of dtype {found}, but param dtype says {dtype!r}")
        return {"value": value, "dtype": dtype}

    def infer(self, *, value, dtype):
        return np.shape(value), dtype

    def emit(self, *, value, dtype):
        if not isinstance(value, np.ndarray):
            return Const(value)
        if value.ndim == 0:
            return Call(np_attr(dtype), (Const(value.item()),))
        if not value.any() and not np.signbit(value).any():     # also: tolist() loses an empty array's shape
            return np_call("zeros", Const(value.shape), dtype=np_attr(dtype))
        return np_call("array", Const(_nested(value.tolist())), dtype=np_attr(dtype))

    def formula(self, *, value, dtype):
        return repr(value) if np.ndim(value) == 0 else f"constant{np.shape(value)}"


def _nested(value):
    """Lists to tuples so the printer writes them as literals."""
    return tuple(_nested(v) for v in value) if isinstance(value, list) else value


@register
class ZerosLike(Op):
    """y = zeros with x's shape and dtype (the gradient of what y does not depend on)."""
    name = "zeros_like"

    def math(self, shapes, x):
        return notation.zeros(shapes[0])
    vjp = no_gradient

    def infer(self, x):
        return x.shape, x.dtype

    def emit(self, x):
        return np_call("zeros_like", x)
