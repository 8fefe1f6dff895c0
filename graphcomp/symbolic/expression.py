"""Element-wise ops defined by sympy expressions; imports graph, op, shapes, codegen.ir and symbolic.

sympy works once per op definition, never per node: the derivatives, the
stability rewrites and the printed NumPy are derived the first time an op is
emitted or differentiated, then cached on the op. A node only stores the op's
name and params, as any other node does.
"""
from __future__ import annotations

import functools
import inspect
import keyword
import numbers

import numpy as np
import sympy as sp

from .. import notation
from ..codegen.ir import Call, Const, Name, np_attr, np_call
from ..errors import DTypeError, OpError
from ..graph import dtype_name, op_function
from ..op import OPS, Op, weak_value
from ..shapes import broadcast_shapes
from . import printing
from .stable import checked, stable


class Expression(Op):
    """An element-wise op computing a sympy expression of its args (NumPy broadcasting).

    Attributes:
        expr: the clean sympy expression (what sympy differentiates).
        symbols: one sympy Symbol per tensor arg, in order.
        constants: ``{Symbol: default}``: the op's numeric params (``alpha`` of ELU).
        given: user-supplied partial derivatives (one per symbol), or None.
        of: for the op computing a partial derivative of another: ``(that op, index)``.
        builtin: defined by graphcomp (``gc.elementwise`` cannot redefine it).
    """
    maps_leading_axes = True

    def __init__(self, name, expr, symbols, constants, given=None, of=None, builtin=False, doc=""):
        self.name = name
        self.expr = expr
        self.symbols = symbols
        self.constants = constants
        self.given = given
        self.of = of
        self.builtin = builtin
        self.public = builtin and of is None     # gc.<name> exists for graphcomp's own
        self.__doc__ = doc or f"y = {name}({', '.join(map(str, symbols))}) = {expr}, element-wise."
        self._partials = {}
        P = inspect.Parameter
        self.signature = inspect.Signature(     # arity() and op_function read it: one per definition
            [*(P(_param(s), P.POSITIONAL_OR_KEYWORD) for s in symbols),
             *(P(_param(c), P.KEYWORD_ONLY, default=v) for c, v in constants.items()),
             P("dtype", P.KEYWORD_ONLY, default=None)])

    def __eq__(self, other):
        return (type(other) is Expression and (self.name, self.expr, self.symbols, self.constants, self.given)
                == (other.name, other.expr, other.symbols, other.constants, other.given))

    def __hash__(self):
        return id(self)

    def normalize(self, *args, **params):
        bound = self.signature.bind(*args, **params)
        bound.apply_defaults()
        params = dict(bound.arguments)
        args = [params.pop(_param(s)) for s in self.symbols]
        dtype = params.pop("dtype")
        for key, value in params.items():
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise OpError(f"param {key!r} must be a real number, got {value!r}")
            params[key] = float(value)
        found = np.result_type(*(weak_value(a) for a in args), 0.0)
        if dtype is not None:
            found = np.dtype(dtype_name(dtype, self.name))
        if found.kind != "f":
            raise DTypeError(f"computes in a float dtype, got {found}")
        if any(not a.weak and a.dtype != found.name for a in args):
            params["dtype"] = found.name       # args of another dtype are cast first
        return params

    def infer(self, *args, dtype=None, **params):
        shape = broadcast_shapes(*(a.shape for a in args))
        return shape, dtype or np.result_type(*(weak_value(a) for a in args), 0.0).name

    def emit(self, *args, dtype=None, **params):
        if dtype is not None:
            args = tuple(np_call("asarray", a, dtype=np_attr(dtype)) for a in args)
        code = self._code
        if code.inline is not None:
            return _substitute(code.inline, {**dict(zip(code.params, args)),
                                             **{k: Const(v) for k, v in params.items()}})
        return Call(Name(code.function.name), args, tuple((k, Const(v)) for k, v in params.items()))

    @property
    def helpers(self):
        code = self._code
        return code.helpers if code.inline is not None else {**code.helpers, code.function.name: code.function}

    @property
    def helper_names(self):
        return (self.helper,)

    @property
    def imports(self):
        return self._code.imports

    @property
    def helper(self):
        """The name of the module-level function computing the op."""
        return "_" + self.ident

    @property
    def ident(self):
        return self.name if self.of is None else f"{self.of[0].ident}__d{_suffix(self.of[0], self.of[1])}"

    @functools.cached_property
    def _numeric(self):
        """f in NumPy (and SciPy) by sympy's own printer: what formulas evaluate with."""
        return sp.lambdify([*self.symbols, *self.constants], self.expr, modules=["scipy", "numpy"])

    @functools.cached_property
    def _code(self):
        return _Code(self)

    def vjp(self, ct, y, *args, dtype=None, **params):
        out = []
        for i, a in enumerate(args):
            if dtype is not None and np.dtype(a.dtype).kind != "f":
                out.append(None)
                continue
            d = self.partial(i)
            if d.expr == 0:
                out.append(None)
            elif not d.expr.free_symbols:
                out.append(ct * float(d.expr))
            else:
                used = [args[self.symbols.index(s)] for s in d.symbols]
                values = {_param(c): params[_param(c)] for c in d.constants}
                out.append(ct * op_function(d)(*used, **values))
        return tuple(out)

    def partial(self, i):
        """The op computing ∂y/∂(arg i), made and registered the first time it is asked for."""
        if i not in self._partials:
            expr = self.given[i] if self.given is not None else sp.diff(self.expr, self.symbols[i])
            symbols = tuple(s for s in self.symbols if s in expr.free_symbols)
            constants = {c: v for c, v in self.constants.items() if c in expr.free_symbols}
            name = f"{self.name}'" if len(self.symbols) == 1 else f"∂{self.name}/∂{self.symbols[i]}"
            op = Expression(name, expr, symbols, constants, of=(self, i), builtin=self.builtin,
                            doc=f"{name}: the derivative of {self.name} w.r.t. {self.symbols[i]}, "
                                f"{expr}, element-wise.")
            self._partials[i] = op
        op = self._partials[i]
        if op.expr.free_symbols:
            OPS[op.name] = op       # (again: the registry may have been reset since)
        return op

    def math(self, shapes, *args, dtype=None, **params):
        values = {c: params[_param(c)] for c in self.constants}
        if not any(notation.is_matrix(a) for a in args):
            return self.expr.xreplace({**dict(zip(self.symbols, args)), **values})
        notation.NUMERIC[self.name] = self._numeric
        return notation.Apply(self.name, shapes[0], {_param(c): v for c, v in values.items()},
                              *(notation.matrix(a, shapes[0]) for a in args))

    def formula(self, *args, **params):
        shown = [*args, *(f"{k}={v!r}" for k, v in params.items() if k != "dtype")]
        return f"{self.name}({', '.join(shown)})"


class _Code:
    """What sympy derives once for an op: the stable printed function, or a one-line expression."""

    def __init__(self, op):
        names = {s: _param(s) for s in (*op.symbols, *op.constants)}
        rewritten = stable(op.expr)
        checked(op.expr, rewritten, op.symbols, {c: v if v else 0.5 for c, v in op.constants.items()})
        self.params = tuple(names[s] for s in op.symbols)
        doc = f"{op.name}({', '.join(map(str, op.symbols))}) = {op.expr}"
        self.function, printed = printing.function(
            op.helper, rewritten, (*self.params, *(names[c] for c in op.constants)), names, op.symbols, doc)
        self.imports, self.helpers = printed.imports, printed.helpers
        *shared, result = self.function.body
        self.inline = result.value if not shared and _calls(result.value) <= 2 else None


def _param(symbol):
    """The Python parameter name of a symbol (``elementwise`` checked that it is one)."""
    return symbol.name


def _suffix(op, i):
    return "" if len(op.symbols) == 1 else _param(op.symbols[i])


def _calls(e):
    """The number of calls in IR ``e``: a short result (two calls or fewer) is written inline."""
    if isinstance(e, tuple):
        return sum(_calls(x) for x in e)
    if not hasattr(e, "__dataclass_fields__"):
        return 0
    return isinstance(e, Call) + sum(_calls(v) for v in vars(e).values())


def _substitute(e, values):
    """IR ``e`` with each parameter Name replaced by its value."""
    if isinstance(e, Name):
        return values.get(e.id, e)
    if isinstance(e, tuple):
        return tuple(_substitute(x, values) for x in e)
    if hasattr(e, "__dataclass_fields__"):
        return type(e)(**{k: _substitute(v, values) for k, v in vars(e).items()})
    return e


def elementwise(name: str, expr, *symbols, derivatives=None, params=None, doc: str = ""):
    """Define an element-wise op from a sympy expression; return its function.

    sympy derives each partial derivative once for the op (not per node); the
    generated code computes f and each derivative in a small module-level
    function, rewritten into numerically stable forms (see docs/symbolic.md).

    Args:
        name: the op's name: a Python identifier without ``__``, not starting with ``_``.
        expr: a sympy expression in ``symbols`` (and the symbols of ``params``).
        *symbols: one sympy Symbol per tensor argument, in order; by default the
            free symbols of ``expr`` that are not params, sorted by name.
        derivatives: partial derivatives to use instead of sympy's, one per
            symbol (for a cheaper or more stable form); ``check_gradients`` finds a wrong one.
        params: ``{Symbol or name: default}``: numeric params of the op
            (``alpha`` of ELU), keyword arguments of its function.
        doc: the function's docstring.

    Returns:
        The op's function, ``f(*tensors, **params, name=None) -> Tensor``.

    Raises:
        OpError: a bad name, a name graphcomp's own ops use, symbols that do not
            match the expression, or a function that cannot be printed as NumPy.

    Defining the same name again replaces the op (as re-running a ``def``
    does): graphs built before use the new definition when compiled.

    Example:
        >>> z = sympy.Symbol("z")
        >>> swish = gc.elementwise("swish", z / (1 + sympy.exp(-z)))
        >>> h = swish(x @ W + b, name="h")
    """
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or "__" in name \
            or name.startswith("_"):
        raise OpError(f"op name must be a Python identifier without '__' and not starting with '_', got {name!r}")
    old = OPS.get(name)
    if old is not None and (type(old) is not Expression or old.builtin):
        raise OpError(f"op name {name!r} is taken by graphcomp's own op; choose another name")
    expr = sp.sympify(expr, strict=True)
    constants = {}
    for key, value in (params or {}).items():
        symbol = sp.Symbol(key) if isinstance(key, str) else key
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise OpError(f"{name}: param {symbol} must default to a real number, got {value!r}")
        constants[symbol] = float(value)
    if not symbols:
        symbols = tuple(sorted(expr.free_symbols - set(constants), key=sp.default_sort_key))
    for s in (*symbols, *constants):
        if not isinstance(s, sp.Symbol):
            raise OpError(f"{name}: {s!r} is not a sympy Symbol")
        if not s.name.isidentifier() or keyword.iskeyword(s.name) or s.name.startswith("_") or s.name == "dtype":
            raise OpError(f"{name}: symbol {s.name!r} must be a Python identifier, not starting with '_'")
    if len({*symbols, *constants}) != len(symbols) + len(constants):
        raise OpError(f"{name}: a symbol is given twice in {[*symbols, *constants]}")
    unknown = expr.free_symbols - set(symbols) - set(constants)
    if unknown:
        raise OpError(f"{name}: {expr} uses {sorted(map(str, unknown))}, neither a symbol nor a param")
    for s in symbols:
        if s not in expr.free_symbols:
            raise OpError(f"{name}: {expr} does not depend on {s}")
    if derivatives is not None:
        derivatives = tuple(sp.sympify(d, strict=True) for d in derivatives)
        if len(derivatives) != len(symbols):
            raise OpError(f"{name}: {len(derivatives)} derivatives given for {len(symbols)} symbols")
    op = Expression(name, expr, tuple(symbols), constants, derivatives, doc=doc)
    if old != op:
        try:
            op._code                    # noqa: B018 - derive now: a bad expression fails here, not at compile
        except OpError as e:
            raise OpError(f"{name}: {e}") from None
        OPS[name] = op
    return op_function(OPS[name])
