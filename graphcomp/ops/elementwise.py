"""Element-wise ops with NumPy broadcasting; imports graph, op, shapes, codegen.ir and notation."""
import contextlib
import numbers
import operator

import numpy as np
import sympy as sp

from .. import notation
from ..codegen.ir import BinOp, Call, Const, Name, UnOp, np_attr, np_call
from ..errors import DTypeError, OpError
from ..graph import F, dtype_name
from ..op import OPS, Op, no_gradient, refuse_bool, register, result_dtype, weak_value
from ..shapes import broadcast_shapes


# NOTE: 3-4x faster than exp(-logaddexp(0, -x)) and as accurate (relative error ~1e-16 in both tails)
SIGMOID = '''
def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp(-|x|) is at most 1."""
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)
'''


class Elementwise(Op):
    """Output shape is the broadcast of the args; dtype is NumPy's result dtype."""
    maps_leading_axes = True

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
        shape, dtype = self.infer(a, b)
        if self.unit is not None:
            for keep, unit in ((a, b), (b, a)) if self.commutes else ((a, b),):
                if is_scalar_constant(unit) and unit.value == self.unit and same_type(keep, shape, dtype):
                    return keep
        # an explicit broadcast is not needed where the other operand broadcasts it anyway
        # (VJPs of sums build them: without this, forward mode would read a stand-in's shape)
        for i, t in enumerate((a, b)):
            if OPS[t.op].broadcast:
                pair = (t.args[0], b) if i == 0 else (a, t.args[0])
                if self.infer(*pair) == (shape, dtype):
                    return a.graph.apply(self.name, pair, {})
        return None

    def emit(self, a, b):
        return BinOp(self.symbol, a, b)

    def formula(self, a, b):
        return f"{a} {self.symbol} {b}"


class Unary(Elementwise):
    """An element-wise op of one argument whose output has the argument's dtype."""

    def infer(self, x):
        return x.shape, x.dtype


class Math(Unary):
    """A NumPy ufunc of one argument with a float result.

    An integer or bool argument is computed in the float dtype NumPy's
    promotion gives (``dtype``, passed to the ufunc): NumPy itself would pick
    a float16 loop for ``exp`` of int8. Subclasses give ``chain``, the
    cotangent of a float argument.
    """

    ufunc = ""

    def normalize(self, x, *, dtype=None):
        if np.dtype(x.dtype).kind == "f":
            if dtype not in (None, x.dtype):
                raise DTypeError(f"{x.name!r} is {x.dtype}: cast it to compute in {dtype}")
            return {}
        dtype = dtype_name(np.result_type(weak_value(x), 0.0) if dtype is None else dtype, self.name)
        if np.dtype(dtype).kind != "f":
            raise DTypeError(f"dtype must be a float dtype, got {dtype}")
        return {"dtype": dtype}

    def infer(self, x, *, dtype=None):
        return x.shape, dtype or x.dtype

    def emit(self, x, *, dtype=None):
        return np_call(self.ufunc, x, dtype=None if dtype is None else np_attr(dtype))

    def vjp(self, ct, y, x, *, dtype=None):
        return (None if dtype else self.chain(ct, y, x),)

    def chain(self, ct, y, x):
        """The cotangent of x, given the cotangent ``ct`` of the output ``y``."""
        raise NotImplementedError


def is_scalar_constant(t):
    return t.op == "constant" and t.shape == ()


def same_type(t, shape, dtype):
    return t.shape == shape and t.dtype == dtype


@register
class Add(Binary):
    """y = a + b."""
    name, symbol = "add", "+"
    fold, unit, commutes = operator.add, 0, True

    def math(self, shapes, a, b, **params):
        return notation.add(shapes[0], a, b)

    def vjp(self, ct, y, a, b):
        return ct, ct


@register
class Sub(Binary):
    """y = a - b."""
    name, symbol = "sub", "-"
    fold, unit = operator.sub, 0

    def math(self, shapes, a, b, **params):
        return notation.add(shapes[0], a, notation.neg(shapes[2], b))

    def infer(self, a, b):
        refuse_bool(a, "subtraction")
        refuse_bool(b, "subtraction")
        return super().infer(a, b)

    def vjp(self, ct, y, a, b):
        return ct, -ct


@register
class Mul(Binary):
    """y = a * b."""
    name, symbol = "mul", "*"
    fold, unit, commutes = operator.mul, 1, True

    def math(self, shapes, a, b):
        return notation.mul(shapes[0], a, b)

    def simplify(self, a, b):
        found = super().simplify(a, b)
        if found is not None:
            return found
        # x * ones: the ones a sum's VJP broadcasts (the gradient of sum(x * t) for x is t)
        shape, dtype = self.infer(a, b)
        for keep, ones in ((a, b), (b, a)):
            if (OPS[ones.op].broadcast and is_scalar_constant(ones.args[0])
                    and ones.args[0].value == 1 and same_type(keep, shape, dtype)):
                return keep
        return None

    def vjp(self, ct, y, a, b):
        return ct * b, ct * a


@register
class Div(Binary):
    """y = a / b (true division);  dy/da = 1/b,  dy/db = -y/b."""
    name, symbol = "div", "/"
    fold, unit = operator.truediv, 1

    def math(self, shapes, a, b):
        return notation.div(shapes[0], a, b)

    def infer(self, a, b):
        shape, _ = super().infer(a, b)
        return shape, np.result_type(weak_value(a), weak_value(b), 0.0).name

    def vjp(self, ct, y, a, b):
        return ct / b, -(ct * y) / b


@register
class Neg(Unary):
    """y = -x."""
    name = "neg"

    def math(self, shapes, x):
        return notation.neg(shapes[0], x)

    def infer(self, x):
        refuse_bool(x, "negation")
        return super().infer(x)

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
    """y = x ** p for a constant number p;  dy/dx = p * x ** (p - 1) (0 for p = 0)."""
    name = "pow"

    def math(self, shapes, x, *, exponent):
        return notation.power(shapes[0], x, sp.nsimplify(exponent))

    def normalize(self, x, *, exponent):
        if not isinstance(exponent, numbers.Real) or isinstance(exponent, (bool, np.bool_)):
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
        if exponent == 0:      # x ** 0 is 1 everywhere: 0 * x ** -1 would be NaN at 0
            return (None,)
        return (ct * (exponent * F.pow(x, exponent - 1)),)


@register
class Exp(Math):
    """y = exp(x);  dy/dx = y."""
    name = ufunc = "exp"

    def math(self, shapes, x, *, dtype=None):
        return notation.function("exp", shapes[0], sp.exp, x)

    def chain(self, ct, y, x):
        return ct * y


@register
class Log(Math):
    """y = log(x);  dy/dx = 1/x."""
    name = ufunc = "log"

    def math(self, shapes, x, *, dtype=None):
        return notation.function("log", shapes[0], sp.log, x)

    def chain(self, ct, y, x):
        return ct / x


@register
class Sqrt(Math):
    """y = sqrt(x);  dy/dx = 1/(2y)."""
    name = ufunc = "sqrt"

    def math(self, shapes, x, *, dtype=None):
        return notation.function("sqrt", shapes[0], sp.sqrt, x)

    def chain(self, ct, y, x):
        return ct / (2 * y)


@register
class Tanh(Math):
    """y = tanh(x);  dy/dx = 1 - y**2."""
    name = ufunc = "tanh"

    def math(self, shapes, x, *, dtype=None):
        return notation.function("tanh", shapes[0], sp.tanh, x)

    def chain(self, ct, y, x):
        return ct * (1 - y * y)


@register
class Sigmoid(Math):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|) so nothing overflows;  dy/dx = y(1-y)."""
    name = "sigmoid"
    helpers = {"_sigmoid": SIGMOID}

    def math(self, shapes, x, *, dtype=None):
        return notation.function("σ", shapes[0], lambda z: 1 / (1 + sp.exp(-z)), x)

    def emit(self, x, *, dtype=None):
        x = x if dtype is None else np_call("asarray", x, dtype=np_attr(dtype))
        return Call(Name("_sigmoid"), (x,))

    def chain(self, ct, y, x):
        return ct * (y * (1 - y))


@register
class Abs(Unary):
    """y = |x|;  dy/dx = sign(x) (0 at 0)."""
    name = "abs"

    def math(self, shapes, x):
        return notation.function("abs", shapes[0], sp.Abs, x)

    def emit(self, x):
        return np_call("abs", x)

    def vjp(self, ct, y, x):
        return (ct * F.sign(x),)


@register
class Sign(Unary):
    """y = sign(x): -1, 0 or 1; its derivative is zero wherever it exists."""
    name = "sign"

    def math(self, shapes, x):
        return notation.function("sign", shapes[0], sp.sign, x)
    vjp = no_gradient

    def infer(self, x):
        refuse_bool(x, "sign")
        return super().infer(x)

    def emit(self, x):
        return np_call("sign", x)


@register
class Relu(Unary):
    """y = max(x, 0);  dy/dx = [x > 0] (0 at 0)."""
    name = "relu"

    def math(self, shapes, x):
        return notation.function("relu", shapes[0], lambda z: sp.Max(0, z), x)

    def infer(self, x):
        refuse_bool(x, "relu")
        return super().infer(x)

    def emit(self, x):
        return np_call("maximum", x, Const(0))      # a weak int 0 keeps x's dtype, int or float

    def vjp(self, ct, y, x):
        return (ct * (y > 0),)


class Extremum(Binary):
    """maximum / minimum;  the gradient goes to the winner, split evenly on ties."""

    beats = ""

    def emit(self, a, b):
        return np_call(self.name, a, b)

    def formula(self, a, b):
        return f"{self.name}({a}, {b})"

    def vjp(self, ct, y, a, b):
        wins_a = getattr(F, self.beats)(a, b)
        tie = F.equal(a, b)
        half = F.where(tie, ct * 0.5, 0.0)
        return F.where(wins_a, ct, half), F.where(wins_a, 0.0, F.where(tie, half, ct))


@register
class Maximum(Extremum):
    """y = max(a, b), element-wise;  the gradient goes to the larger, split evenly on ties."""
    name, beats = "maximum", "greater"

    def math(self, shapes, a, b):
        return notation.function("max", shapes[0], sp.Max, a, b)


@register
class Minimum(Extremum):
    """y = min(a, b), element-wise;  the gradient goes to the smaller, split evenly on ties."""
    name, beats = "minimum", "less"

    def math(self, shapes, a, b):
        return notation.function("min", shapes[0], sp.Min, a, b)


class Compare(Binary):
    """A comparison; bool output, no gradient."""

    vjp = no_gradient

    def math(self, shapes, a, b):
        return notation.indicator(shapes[0], self.symbol, a, b)

    def infer(self, a, b):
        return super().infer(a, b)[0], "bool"


@register
class Greater(Compare):
    """y = a > b (bool)."""
    name, symbol = "greater", ">"


@register
class Less(Compare):
    """y = a < b (bool)."""
    name, symbol = "less", "<"


@register
class Equal(Compare):
    """y = a == b (bool)."""
    name, symbol = "equal", "=="


@register
class Where(Elementwise):
    """y = a where cond else b, element-wise;  the gradient of a is ct where cond, of b elsewhere."""
    name = "where"

    def math(self, shapes, cond, a, b):
        return notation.function("where", shapes[0], lambda c, t, f: sp.Piecewise((t, sp.Ne(c, 0)), (f, True)),
                                 cond, a, b)

    def infer(self, cond, a, b):
        if cond.dtype != "bool":
            raise DTypeError(f"condition {cond.name!r} must be bool, got {cond.dtype}")
        return super().infer(cond, a, b)[0], result_dtype(a, b)

    def emit(self, cond, a, b):
        return np_call("where", cond, a, b)

    def vjp(self, ct, y, cond, a, b):
        return None, F.where(cond, ct, 0.0), F.where(cond, 0.0, ct)


@register
class Cast(Unary):
    """y = x converted to ``dtype``;  the gradient is cast back for float x."""
    name = "cast"

    def math(self, shapes, x, *, dtype):
        return x

    def normalize(self, x, *, dtype):
        return {"dtype": dtype_name(dtype, "dtype")}

    def infer(self, x, *, dtype):
        return x.shape, dtype

    def emit(self, x, *, dtype):
        return np_call("asarray", x, dtype=np_attr(dtype))

    def vjp(self, ct, y, x, *, dtype):
        return (F.cast(ct, x.dtype) if np.dtype(x.dtype).kind == "f" else None,)
