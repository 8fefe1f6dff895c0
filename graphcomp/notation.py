"""Textbook notation as sympy expressions: what an op's ``math`` builds; imports sympy and numpy only.

A tensor of rank 0 is a sympy scalar; rank 2 is a sympy matrix expression;
a vector (k,) is a row vector, 1 × k, as a bias is written. Ops combine
them with the helpers below, which pick the scalar form when every operand
is a scalar (so a graph of scalars renders as an ordinary sympy expression)
and sympy's matrix algebra otherwise (product, transpose, Hadamard product),
plus the few classes sympy lacks: an element-wise function ``f(Z)``, an
indicator ``𝟙[Z > 0]``, a broadcast ``𝟏b``, sums ``𝟏ᵀG``, and any op
without a textbook form (``nll(P, y)``). Each class prints as text and LaTeX
and evaluates itself with NumPy (``numeric``), independently of generated code.
"""
import numpy as np
import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr

def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _one_hot(labels, depth):
    return np.eye(depth)[np.ravel(labels).astype(int)]


def _nll(logp, labels, reduction=1):
    picked = -logp[np.arange(logp.shape[0]), np.ravel(labels).astype(int)]
    return picked.mean() if reduction else picked.sum()


# name of a function or op in the notation -> NumPy function of its evaluated operands (and params):
# what Formula.evaluate computes with, independently of generated code. Vectors arrive as 1 × k rows.
NUMERIC = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "σ": lambda x: 1 / (1 + np.exp(-x)),
    "abs": np.abs, "sign": np.sign, "relu": lambda x: np.maximum(x, 0), "max": np.maximum, "min": np.minimum,
    "where": lambda c, a, b: np.where(c != 0, a, b),
    "softmax": _softmax, "log_softmax": lambda x, axis=-1: np.log(_softmax(x, axis)),
    "one_hot": lambda labels, depth: _one_hot(labels, depth),
    "nll_loss": _nll, "cross_entropy": lambda z, labels, reduction=1: _nll(np.log(_softmax(z)), labels, reduction),
    "mse": lambda a, b: np.mean((a - b) ** 2),
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, axes: np.transpose(x, axes),
    "matmul": np.matmul, "add": np.add, "neg": np.negative, "mul": np.multiply, "div": np.divide,
    "pow": lambda x, p: np.power(x, p),
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=bool(keepdims)),
}


def dims(shape):
    """The sympy shape of a graphcomp shape: a vector (k,) is a row, 1 × k."""
    return (sp.Integer(1), *shape) if len(shape) == 1 else tuple(shape)


def is_matrix(e):
    return getattr(e, "is_Matrix", False)


def matrix(e, shape):
    """``e`` as a matrix of ``shape`` (graphcomp's): a scalar is filled, a row broadcast as 𝟏b."""
    target = dims(shape)
    if not target:
        return e
    if not is_matrix(e):
        return Fill(e, sp.Tuple(*target))
    if tuple(e.shape) == target:
        return e
    return Broadcast(e, sp.Tuple(*target))


def _beyond_matrices(shape):
    """Rank 3 and up: sympy's matrix algebra is 2-D, so arithmetic prints as ``add(a, b)``."""
    return len(dims(shape)) > 2


def add(shape, *terms):
    if all(not is_matrix(t) for t in terms):
        return sp.Add(*terms)
    if _beyond_matrices(shape):
        out = terms[0]
        for t in terms[1:]:
            out = Apply("add", shape, (), matrix(out, shape), matrix(t, shape))
        return out
    return sp.MatAdd(*(matrix(t, shape) for t in terms)).doit(deep=False)


def neg(shape, e):
    return Apply("neg", shape, (), e) if is_matrix(e) and _beyond_matrices(shape) else -e


def mul(shape, a, b):
    """Element-wise product: a scalar factor scales, two matrices give a Hadamard product."""
    if not is_matrix(a) and not is_matrix(b):
        return a * b
    if _beyond_matrices(shape):
        return Apply("mul", shape, (), a, b)
    if not is_matrix(a) or not is_matrix(b):
        return a * b
    return sp.HadamardProduct(matrix(a, shape), matrix(b, shape))


def div(shape, a, b):
    if not is_matrix(a) and not is_matrix(b):
        return a / b
    if _beyond_matrices(shape):
        return Apply("div", shape, (), a, b)
    if not is_matrix(b):
        return a / b
    return mul(shape, a, sp.HadamardPower(matrix(b, shape), -1))


def power(shape, a, p):
    if not is_matrix(a):
        return a ** p
    return Apply("pow", shape, {"p": p}, a) if _beyond_matrices(shape) else sp.HadamardPower(a, p)


def matmul(a, b):
    if not is_matrix(a) or not is_matrix(b):
        return a * b
    return sp.MatMul(a, b).doit(deep=False)


def transpose(a):
    return a if not is_matrix(a) else sp.Transpose(a).doit(deep=False)


# f(g(Z)) that textbooks write as one function: (f, g) -> the function f∘g is
COMPOSED = {("exp", "log_softmax"): "softmax"}


def function(name, shape, scalar, *args):
    """An element-wise function: ``scalar(*args)`` for scalars, else ``name(Z)`` (``COMPOSED`` names
    a composition such as exp(log_softmax(Z)) = softmax(Z))."""
    if not any(is_matrix(a) for a in args):
        return scalar(*args)
    inner = args[0]
    if len(args) == 1 and isinstance(inner, Apply) and (name, inner.name) in COMPOSED:
        return Apply(COMPOSED[name, inner.name], shape, inner.args[2], *inner.operands)
    return Apply(name, shape, (), *(matrix(a, shape) for a in args))


def apply(name, shape, *args, **params):
    """An op without a textbook form, printed as ``name(args)``; a scalar if ``shape`` is ().

    ``params`` (numbers or tuples of them) are not printed; ``NUMERIC[name]`` gets them.
    """
    if not shape:
        return Of(name, params, *args)
    return Apply(name, shape, params, *args)


def dim_product(shape, axes):
    """The number of elements summed over ``axes``: the size of a mean's denominator."""
    out = sp.Integer(1)
    for a in axes:
        out *= shape[a]
    return out


def total(shape, a, axis, keepdims):
    """A sum over ``axis`` of a value of graphcomp shape ``shape``."""
    if not is_matrix(a):
        return a * dim_product(shape, axis) if shape else a
    if len(shape) == 2 and axis == (0,):
        return ColumnSum(a)
    if len(shape) <= 2 and len(axis) == len(shape) and not keepdims:
        return Total(a)
    return Apply("sum", _kept(shape, axis, keepdims), {"axis": axis, "keepdims": int(keepdims)}, a)


def _kept(shape, axis, keepdims):
    return tuple(1 if i in axis else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i not in axis)


def reshape(shape, shape_in, x):
    """A reshape: the same expression where the notation's shapes agree ((k,) and (1, k)), else reshape(x)."""
    if dims(shape) == dims(shape_in) or not shape:
        return x
    return Apply("reshape", shape, {"shape": tuple(int(d) if d.is_Integer else -1 for d in shape)}, x)


def constant(value):
    """A constant: an exact number where the float is one (``2.0`` prints 2), a matrix if small."""
    array = np.asarray(value)
    if array.ndim == 0:
        v = array.item()
        exact = sp.Rational(v).limit_denominator(1000) if isinstance(v, float) and np.isfinite(v) else None
        return exact if exact is not None and float(exact) == v else sp.sympify(v)
    return sp.ImmutableMatrix(np.atleast_2d(array).tolist())


def zeros(shape):
    return sp.ZeroMatrix(*dims(shape)) if shape else sp.Integer(0)


def indicator(shape, relation, a, b):
    """``𝟙[a > b]``: 1 where the relation holds, else 0."""
    if not is_matrix(a) and not is_matrix(b):
        return sp.Heaviside({">": a - b, "<": b - a}[relation], 0) if relation != "==" else \
            sp.Piecewise((1, sp.Eq(a, b)), (0, True))
    return Indicator(Str(relation), matrix(a, shape), matrix(b, shape))


def symbol(name, shape):
    """The symbol of a named tensor of graphcomp ``shape`` (sympy dims): a scalar, a matrix (a
    vector as a 1 × k row), or for rank 3 and up a ``TensorSymbol``."""
    shape = dims(shape)
    if not shape:
        return sp.Symbol(name)
    return sp.MatrixSymbol(name, *shape) if len(shape) == 2 else TensorSymbol(name, *shape)


class TensorSymbol(sp.MatrixSymbol):
    """A named tensor of rank 3 or more (NCHW images): sympy's matrices are 2-D, so only
    element-wise notation and ``name(args)`` apply to it."""

    def __new__(cls, name, *shape):
        return sp.Basic.__new__(cls, _str(name), sp.Tuple(*shape))

    @property
    def shape(self):
        return tuple(self.args[1])


def _args_str(printer, args):
    return ", ".join(printer._print(a) for a in args)


class Notation:
    """What the classes below share: ``operands`` (the sympy args that are values) and
    ``numeric(*their values)``."""

    @property
    def operands(self):
        return self.args[:1]


class Apply(Notation, MatrixExpr):
    """``f(Z)``: an element-wise function or an op without a textbook form, on matrices."""

    def __new__(cls, name, shape, params, *args):
        """``shape`` is graphcomp's (or the sympy Tuple sympy rebuilds the expression with)."""
        shape = shape if isinstance(shape, sp.Tuple) else sp.Tuple(*dims(shape))
        return super().__new__(cls, _str(name), shape, _params(params), *args)

    @property
    def name(self):
        return self.args[0].name

    @property
    def shape(self):
        return tuple(self.args[1])

    @property
    def operands(self):
        return self.args[3:]

    def _sympystr(self, printer):
        return f"{self.name}({_args_str(printer, self.operands)})"

    def _latex(self, printer):
        return rf"{_latex_function(self.name)}\left({', '.join(printer._print(a) for a in self.operands)}\right)"

    def numeric(self, *values):
        return NUMERIC[self.name](*values, **_unparams(self.args[2]))


class Of(Notation, sp.Expr):
    """A scalar op without a textbook form: ``nll(P, y)``."""

    is_commutative = True

    def __new__(cls, name, params, *args):
        return super().__new__(cls, _str(name), _params(params), *args)

    @property
    def name(self):
        return self.args[0].name

    @property
    def operands(self):
        return self.args[2:]

    def _sympystr(self, printer):
        return f"{self.name}({_args_str(printer, self.operands)})"

    def _latex(self, printer):
        return rf"{_latex_function(self.name)}\left({', '.join(printer._print(a) for a in self.operands)}\right)"

    def numeric(self, *values):
        return NUMERIC[self.name](*values, **_unparams(self.args[1]))


class Indicator(Notation, MatrixExpr):
    """``𝟙[a > b]``, element-wise."""

    @property
    def shape(self):
        return self.args[1].shape

    @property
    def operands(self):
        return self.args[1:]

    def _sympystr(self, printer):
        return f"𝟙[{printer._print(self.args[1])} {self.args[0].name} {printer._print(self.args[2])}]"

    def _latex(self, printer):
        rel = {">": ">", "<": "<", "==": "="}[self.args[0].name]
        return rf"\mathbb{{1}}\left[{printer._print(self.args[1])} {rel} {printer._print(self.args[2])}\right]"

    def numeric(self, a, b):
        return {">": np.greater, "<": np.less, "==": np.equal}[self.args[0].name](a, b).astype(float)


class Fill(Notation, MatrixExpr):
    """A scalar used as a matrix (in a sum with one): prints as the scalar."""

    @property
    def shape(self):
        return tuple(self.args[1])

    def _sympystr(self, printer):
        return printer._print(self.args[0])

    def _latex(self, printer):
        return printer._print(self.args[0])

    def numeric(self, value):
        return value       # NumPy broadcasts it where it is used


class Broadcast(Notation, MatrixExpr):
    """``𝟏b``: a row repeated down the rows (a bias added to every example)."""

    @property
    def shape(self):
        return tuple(self.args[1])

    def _sympystr(self, printer):
        return f"𝟏{printer.parenthesize(self.args[0], 60)}"

    def _latex(self, printer):
        return rf"\mathbf{{1}} {printer.parenthesize(self.args[0], 60)}"

    def numeric(self, value):
        return value


class ColumnSum(Notation, MatrixExpr):
    """``𝟏ᵀG``: the sum of the rows of G (what a bias's gradient is)."""

    @property
    def shape(self):
        return (sp.Integer(1), self.args[0].shape[1])

    def _sympystr(self, printer):
        return f"𝟏ᵀ{printer.parenthesize(self.args[0], 60)}"

    def _latex(self, printer):
        return rf"\mathbf{{1}}^{{T}} {printer.parenthesize(self.args[0], 60)}"

    def numeric(self, value):
        return value.sum(axis=0, keepdims=True)


class Total(Notation, sp.Expr):
    """``Σ G``: the sum of every element."""

    is_commutative = True

    def _sympystr(self, printer):
        return f"Σ {printer.parenthesize(self.args[0], 60)}"

    def _latex(self, printer):
        return rf"\sum {printer.parenthesize(self.args[0], 60)}"

    def numeric(self, value):
        return np.sum(value)


def _str(name):
    return name if isinstance(name, Str) else Str(name)


def _params(params):
    if isinstance(params, sp.Tuple):
        return params
    return sp.Tuple(*(sp.Tuple(Str(k), sp.sympify(v)) for k, v in dict(params).items()))


def _unparams(params):
    return {k.name: _python(v) for k, v in params}


def _python(v):
    return tuple(_python(x) for x in v) if isinstance(v, sp.Tuple) else (int(v) if v.is_Integer else float(v))


_LATEX_FUNCTIONS = {"exp": r"\exp", "log": r"\log", "tanh": r"\tanh", "σ": r"\sigma", "sqrt": r"\sqrt",
                    "max": r"\max", "min": r"\min"}


def _latex_function(name):
    return _LATEX_FUNCTIONS.get(name) or rf"\operatorname{{{_latex_name(name)}}}"


def _latex_name(name):
    return name.replace("\\", r"\backslash ").replace("_", r"\_").replace("{", r"\{").replace("}", r"\}") \
        .replace("$", r"\$").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#").replace("^", r"\^{}")
