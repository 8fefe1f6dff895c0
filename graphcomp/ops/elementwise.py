"""Element-wise ops with NumPy broadcasting; imports graph, op, shapes and codegen.ir."""
import contextlib
import numbers
import operator

import numpy as np

from ..codegen.ir import BinOp, Const, UnOp, np_attr, np_call
from ..errors import DTypeError, OpError
from ..graph import apply, dtype_name
from ..op import Op, register, result_dtype, weak_value
from ..shapes import broadcast_shapes


class Elementwise(Op):
    """Output shape is the broadcast of the args; dtype is NumPy's result dtype."""

    def infer(self, *args):
        shape = broadcast_shapes(*(a.shape for a in args))
        return shape, result_dtype(*args)


class Binary(Elementwise):
    """A Python binary operator.

    Attributes:
        fold: the operator on two scalar constants, which become one constant.
        unit: ``x op unit == x``, so that node is not built (0 for +, 1 for *).
        commutes: the unit works on the left too.
    """

    symbol = ""
    fold = None
    unit = None
    commutes = False

    def infer(self, a, b):
        return super().infer(a, b)

    def simplify(self, a, b):
        if self.fold is not None and is_scalar_constant(a) and is_scalar_constant(b):
            with np.errstate(all="ignore"), contextlib.suppress(ArithmeticError):   # 1.0 / 0: left to run time
                return a.graph.constant(self.fold(a.value, b.value))
        if self.unit is None:
            return None
        shape, dtype = self.infer(a, b)
        for keep, unit in ((a, b), (b, a)) if self.commutes else ((a, b),):
            if is_scalar_constant(unit) and unit.value == self.unit and same_type(keep, shape, dtype):
                return keep
        return None

    def emit(self, a, b):
        return BinOp(self.symbol, a, b)

    def formula(self, a, b):
        return f"{a} {self.symbol} {b}"


class Unary(Elementwise):
    """A NumPy ufunc of one float argument (ints are promoted as NumPy does)."""

    ufunc = ""

    def infer(self, x):
        return x.shape, np.result_type(weak_value(x), 0.0).name

    def emit(self, x):
        return np_call(self.ufunc, x)


def is_scalar_constant(t):
    return t.op == "constant" and t.shape == ()


def same_type(t, shape, dtype):
    return t.shape == shape and t.dtype == dtype


@register
class Add(Binary):
    """y = a + b."""
    name, symbol = "add", "+"
    fold, unit, commutes = operator.add, 0, True

    def vjp(self, ct, y, a, b):
        return ct, ct


@register
class Sub(Binary):
    """y = a - b."""
    name, symbol = "sub", "-"
    fold, unit = operator.sub, 0

    def vjp(self, ct, y, a, b):
        return ct, -ct


@register
class Mul(Binary):
    """y = a * b."""
    name, symbol = "mul", "*"
    fold, unit, commutes = operator.mul, 1, True

    def vjp(self, ct, y, a, b):
        return ct * b, ct * a


@register
class Div(Binary):
    """y = a / b;  dy/da = 1/b,  dy/db = -y/b."""
    name, symbol = "div", "/"

    def infer(self, a, b):
        shape, _ = super().infer(a, b)
        return shape, np.result_type(weak_value(a), weak_value(b), 0.0).name

    fold, unit = operator.truediv, 1

    def vjp(self, ct, y, a, b):
        return ct / b, -(ct * y) / b


@register
class Neg(Elementwise):
    """y = -x."""
    name = "neg"

    def simplify(self, x):
        return x.graph.constant(-x.value) if is_scalar_constant(x) else None

    def emit(self, x):
        return UnOp("-", x)

    def formula(self, x):
        return f"-{x}"

    def vjp(self, ct, y, x):
        return (-ct,)


@register
class Pow(Elementwise):
    """y = x ** p for a constant number p;  dy/dx = p * x ** (p - 1)."""
    name = "pow"

    def normalize(self, x, *, exponent):
        if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
            raise OpError(f"exponent must be a constant number, got {exponent!r}")
        return {"exponent": exponent.item() if isinstance(exponent, np.generic) else exponent}

    def infer(self, x, *, exponent):
        return x.shape, np.result_type(weak_value(x), exponent).name

    def simplify(self, x, *, exponent):
        return x if exponent == 1 else None

    def emit(self, x, *, exponent):
        return BinOp("**", x, Const(exponent))

    def formula(self, x, *, exponent):
        return f"{x} ** {exponent!r}"

    def vjp(self, ct, y, x, *, exponent):
        return (ct * (exponent * pow(x, exponent - 1)),)


@register
class Exp(Unary):
    """y = exp(x);  dy/dx = y."""
    name = ufunc = "exp"

    def vjp(self, ct, y, x):
        return (ct * y,)


@register
class Log(Unary):
    """y = log(x);  dy/dx = 1/x."""
    name = ufunc = "log"

    def vjp(self, ct, y, x):
        return (ct / x,)


@register
class Sqrt(Unary):
    """y = sqrt(x);  dy/dx = 1/(2y)."""
    name = ufunc = "sqrt"

    def vjp(self, ct, y, x):
        return (ct / (2 * y),)


@register
class Tanh(Unary):
    """y = tanh(x);  dy/dx = 1 - y**2."""
    name = ufunc = "tanh"

    def vjp(self, ct, y, x):
        return (ct * (1 - y * y),)


@register
class Sigmoid(Unary):
    """y = 1 / (1 + exp(-x)), computed as exp(-log(1 + exp(-x))) to avoid overflow;  dy/dx = y(1-y)."""
    name = "sigmoid"

    def emit(self, x):
        return np_call("exp", UnOp("-", np_call("logaddexp", Const(0.0), UnOp("-", x))))

    def vjp(self, ct, y, x):
        return (ct * (y * (1 - y)),)


@register
class Abs(Elementwise):
    """y = |x|;  dy/dx = sign(x) (0 at 0)."""
    name = "abs"

    def emit(self, x):
        return np_call("abs", x)

    def vjp(self, ct, y, x):
        return (ct * sign(x),)


@register
class Sign(Elementwise):
    """y = sign(x); its derivative is zero wherever it exists."""
    name = "sign"

    def emit(self, x):
        return np_call("sign", x)


@register
class Relu(Elementwise):
    """y = max(x, 0);  dy/dx = [x > 0] (0 at 0)."""
    name = "relu"

    def infer(self, x):
        return x.shape, x.dtype

    def emit(self, x):
        return np_call("maximum", x, Const(0))      # a weak int 0 keeps x's dtype, int or float

    def vjp(self, ct, y, x):
        return (ct * (y > 0),)


class Extremum(Binary):
    """maximum / minimum;  the gradient goes to the winner, split evenly on ties."""

    def emit(self, a, b):
        return np_call(self.name, a, b)

    def formula(self, a, b):
        return f"{self.name}({a}, {b})"

    def vjp(self, ct, y, a, b):
        wins_a = apply(self.beats, (a, b), {})
        tie = apply("equal", (a, b), {})
        half = where(tie, ct * 0.5, 0.0)
        return where(wins_a, ct, half), where(wins_a, 0.0, where(tie, half, ct))


@register
class Maximum(Extremum):
    """y = max(a, b) element-wise."""
    name, beats = "maximum", "greater"


@register
class Minimum(Extremum):
    """y = min(a, b) element-wise."""
    name, beats = "minimum", "less"


class Compare(Binary):
    """A comparison; bool output, no gradient."""

    def infer(self, a, b):
        return super().infer(a, b)[0], "bool"


@register
class Greater(Compare):
    """y = a > b."""
    name, symbol = "greater", ">"


@register
class Less(Compare):
    """y = a < b."""
    name, symbol = "less", "<"


@register
class Equal(Compare):
    """y = a == b."""
    name, symbol = "equal", "=="


@register
class Where(Elementwise):
    """y = cond ? a : b, element-wise;  the gradient of a is ct where cond, of b elsewhere."""
    name = "where"

    def infer(self, cond, a, b):
        if cond.dtype != "bool":
            raise DTypeError(f"condition {cond.name!r} must be bool, got {cond.dtype}")
        return super().infer(cond, a, b)[0], result_dtype(a, b)

    def emit(self, cond, a, b):
        return np_call("where", cond, a, b)

    def vjp(self, ct, y, cond, a, b):
        return None, where(cond, ct, 0.0), where(cond, 0.0, ct)


@register
class Cast(Elementwise):
    """y = x converted to ``dtype``;  the gradient is cast back for float x."""
    name = "cast"
    view = True

    def normalize(self, x, *, dtype):
        return {"dtype": dtype_name(dtype, "cast")}

    def infer(self, x, *, dtype):
        return x.shape, dtype

    def emit(self, x, *, dtype):
        return np_call("asarray", x, dtype=np_attr(dtype))

    def vjp(self, ct, y, x, *, dtype):
        return (cast(ct, x.dtype) if np.dtype(x.dtype).kind == "f" else None,)


def add(a, b, *, name=None):
    """a + b with broadcasting."""
    return apply("add", (a, b), {}, name)


def sub(a, b, *, name=None):
    """a - b with broadcasting."""
    return apply("sub", (a, b), {}, name)


def mul(a, b, *, name=None):
    """a * b with broadcasting."""
    return apply("mul", (a, b), {}, name)


def div(a, b, *, name=None):
    """a / b with broadcasting (true division)."""
    return apply("div", (a, b), {}, name)


def neg(x, *, name=None):
    """-x."""
    return apply("neg", (x,), {}, name)


def pow(x, exponent, *, name=None):   # noqa: A001 - mirrors np.power's role; the builtin is not used here
    """x ** exponent for a constant number ``exponent``."""
    return apply("pow", (x,), {"exponent": exponent}, name)


def exp(x, *, name=None):
    """e ** x."""
    return apply("exp", (x,), {}, name)


def log(x, *, name=None):
    """Natural logarithm."""
    return apply("log", (x,), {}, name)


def sqrt(x, *, name=None):
    """Square root."""
    return apply("sqrt", (x,), {}, name)


def abs(x, *, name=None):   # noqa: A001 - public op name
    """|x|."""
    return apply("abs", (x,), {}, name)


def sign(x, *, name=None):
    """-1, 0 or 1 by the sign of x."""
    return apply("sign", (x,), {}, name)


def relu(x, *, name=None):
    """max(x, 0)."""
    return apply("relu", (x,), {}, name)


def sigmoid(x, *, name=None):
    """1 / (1 + exp(-x)), overflow-free."""
    return apply("sigmoid", (x,), {}, name)


def tanh(x, *, name=None):
    """Hyperbolic tangent."""
    return apply("tanh", (x,), {}, name)


def maximum(a, b, *, name=None):
    """Element-wise max of a and b."""
    return apply("maximum", (a, b), {}, name)


def minimum(a, b, *, name=None):
    """Element-wise min of a and b."""
    return apply("minimum", (a, b), {}, name)


def greater(a, b, *, name=None):
    """a > b (bool)."""
    return apply("greater", (a, b), {}, name)


def less(a, b, *, name=None):
    """a < b (bool)."""
    return apply("less", (a, b), {}, name)


def equal(a, b, *, name=None):
    """a == b (bool)."""
    return apply("equal", (a, b), {}, name)


def where(cond, a, b, *, name=None):
    """a where cond is true, else b."""
    return apply("where", (cond, a, b), {}, name)


def cast(x, dtype, *, name=None):
    """x converted to ``dtype``."""
    return apply("cast", (x,), {"dtype": dtype}, name)
