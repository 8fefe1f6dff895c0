"""sympy expressions as code IR (printed like the rest of generated code); imports sympy, codegen.ir and errors.

Constants become Python literals, which NumPy 2 types weakly, so a float32
argument gives a float32 result (``sqrt(2)*z`` prints ``1.4142135623730951 * z``,
not a float64 ``np.sqrt(2)``). ``erf`` is SciPy's (NumPy has none); a
function that neither has is an OpError when the op is defined.
"""
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..codegen.ir import Assign, Attr, BinOp, Call, Const, FunctionDef, Name, Return, UnOp, np_call
from ..errors import OpError
from ..ops.elementwise import SIGMOID

_UFUNCS = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.tanh: "tanh",
           sp.sinh: "sinh", sp.cosh: "cosh", sp.asin: "arcsin", sp.acos: "arccos", sp.atan: "arctan",
           sp.asinh: "arcsinh", sp.acosh: "arccosh", sp.atanh: "arctanh", sp.Abs: "abs", sp.sign: "sign",
           log1p: "log1p", expm1: "expm1", sp.floor: "floor", sp.ceiling: "ceil"}
_SCIPY = {sp.erf: "erf", sp.erfc: "erfc"}
_RELATIONS = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<", sp.LessThan: "<=",
              sp.Eq: "==", sp.Ne: "!="}
_SCIPY_MODULE = "scipy.special"


class ToIR:
    """Converts one expression; ``names`` maps symbols to IR, ``imports`` collects modules it needs.

    ``arrays`` are the symbols that stand for arrays (the others are Python numbers).
    """

    def __init__(self, names, arrays):
        self.names = names
        self.arrays = set(arrays)
        self.imports = set()
        self.helpers = {}      # module-level helpers the expression calls

    def __call__(self, e):
        if e in self.names:
            return self.names[e]
        if e.is_Integer:
            return Const(int(e))
        if not e.free_symbols:
            if not e.is_real:
                raise OpError(f"{e} is not a real number")
            return Const(float(e))
        method = getattr(self, f"_{type(e).__name__}", None)
        if method is not None:
            return method(e)
        for kind, ufunc in _UFUNCS.items():
            if isinstance(e, kind):
                return np_call(ufunc, self(e.args[0]))
        for kind, name in _SCIPY.items():
            if isinstance(e, kind):
                self.imports.add(_SCIPY_MODULE)
                return Call(Attr(Attr(Name("scipy"), "special"), name), (self(e.args[0]),))
        for kind, symbol in _RELATIONS.items():
            if isinstance(e, kind):
                return BinOp(symbol, self(e.lhs), self(e.rhs))
        raise OpError(f"cannot print {type(e).__name__} ({e}) as NumPy")

    def _Add(self, e):
        terms = e.as_ordered_terms()
        out = self(terms[0])
        for t in terms[1:]:
            negative = t.could_extract_minus_sign()
            out = BinOp("-" if negative else "+", out, self(-t if negative else t))
        return out

    def _Mul(self, e):
        coeff, factors = e.as_coeff_mul()
        numerator, denominator = [], []
        for f in factors:
            base, power = f.as_base_exp()
            if power.is_Number and power < 0:
                denominator.append(base ** -power)
            else:
                numerator.append(f)
        if coeff.is_Rational and coeff.q != 1:       # 1/2*z prints z / 2
            denominator.insert(0, sp.Integer(coeff.q))
            coeff = sp.Integer(coeff.p)
        if abs(coeff) != 1:
            numerator.insert(0, abs(coeff))
        out = self(numerator[0]) if numerator else Const(1)
        for f in numerator[1:]:
            out = BinOp("*", out, self(f))
        for f in denominator:
            out = BinOp("/", out, self(f))
        return UnOp("-", out) if coeff < 0 else out

    def _Pow(self, e):
        base, power = e.args
        if base is sp.E:
            return np_call("exp", self(power))
        if power == sp.S.Half:
            return np_call("sqrt", self(base))
        if power.is_Number and power < 0:
            return BinOp("/", Const(1), self(base ** -power))
        if power.is_Integer:
            return BinOp("**", self(base), Const(int(power)))
        return BinOp("**", self(base), self(power))

    def _sigmoid(self, e):           # the sigmoid op's own helper: no overflow for any a
        self.helpers["_sigmoid"] = SIGMOID
        return Call(Name("_sigmoid"), (self(e.args[0]),))

    def _softplus(self, e):
        return np_call("logaddexp", Const(0), self(e.args[0]))

    def _Max(self, e):
        return self._fold("maximum", e.args)

    def _Min(self, e):
        return self._fold("minimum", e.args)

    def _fold(self, ufunc, args):
        out = self(args[0])
        for a in args[1:]:
            out = np_call(ufunc, out, self(a))
        return out

    def _Heaviside(self, e):
        # NOTE: sympy's H(0) is 1/2 unless given (d/dz max(0, z) is H(z)); graphcomp takes H(0) = 0,
        # so relu'(0) = 0 as in PyTorch and JAX. A value other than 1/2 given in the expression is kept.
        at_zero = e.args[1] if len(e.args) > 1 and e.args[1] != sp.S.Half else sp.S.Zero
        return np_call("heaviside", self(e.args[0]), self(at_zero))

    def _Piecewise(self, e):
        *branches, (last, cond) = e.args
        if cond != sp.true:
            raise OpError(f"{e} is undefined where no condition holds: give a last branch (value, True)")
        out = self(last)
        for value, cond in reversed(branches):
            out = np_call("where", self(cond), self(value), out)
        if all(not value.free_symbols & self.arrays for value, _ in e.args):
            # where() of numbers alone is float64: take the dtype of the array the conditions test
            var = min(e.free_symbols & self.arrays, key=sp.default_sort_key)
            out = Call(Attr(out, "astype"), (Attr(self(var), "dtype"),), (("copy", Const(False)),))
        return out

    def _And(self, e):
        return self._fold("logical_and", e.args)

    def _Or(self, e):
        return self._fold("logical_or", e.args)


def function(name, expr, params, names, arrays, doc):
    """A helper FunctionDef computing ``expr`` (shared subexpressions via ``sympy.cse``), and the
    ToIR that printed it (its ``imports`` and ``helpers``); ``params`` are its parameter names,
    ``names`` maps symbols to them, ``arrays`` are the symbols that stand for arrays."""
    to_ir = ToIR({s: Name(n) for s, n in names.items()}, arrays)
    taken = {str(s) for s in expr.free_symbols} | set(names.values())
    temps = (sp.Symbol(n) for n in (f"t{i}" for i in range(10**6)) if n not in taken)
    shared, (result,) = sp.cse([expr], symbols=temps, order="none")
    body = []
    for symbol, value in shared:
        body.append(Assign(Name(symbol.name), to_ir(value)))
        to_ir.names[symbol] = Name(symbol.name)
    return FunctionDef(name, tuple(params), (*body, Return(to_ir(result))), doc), to_ir
