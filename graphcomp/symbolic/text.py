"""Read sympy expressions back from their ``srepr`` text without eval; imports errors and symbolic.functions.

Graph files store an element-wise op's expression as ``sympy.srepr`` text
(``Mul(Symbol('z'), Pow(Add(Integer(1), exp(Mul(Integer(-1), Symbol('z')))),
Integer(-1)))``). ``sympify`` would ``eval`` it; this reader parses it with
``ast`` (which runs nothing) and builds only what a whitelist allows: the
sympy classes and functions below, called with numbers, strings, booleans and
other whitelisted calls. Anything else (attributes, subscripts, lambdas,
``__import__``, unknown names) is an error naming what was refused.

Numbers are bounded so that building the expression cannot take forever:
integers of at most ``MAX_DIGITS`` digits, finite floats of at most 113 bits of
precision, and a numeric power (a number raised to a number, which sympy
evaluates exactly) only of a plain number to a small exponent.
"""
import ast
import math
import re

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.functions.elementary.piecewise import ExprCondPair

from ..errors import GraphError
from .functions import sigmoid, softplus

MAX_DIGITS = 30           # of an integer literal (enough for any constant a network needs)
MAX_EXPONENT = 64         # of a power of a number: 2**64 is a 20-digit number, never 2**(10**9)
MAX_PRECISION = 113       # bits of a Float (quadruple precision)
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
MAX_NODES = 5_000         # calls and literals in one expression

# name -> sympy callable; only these may be called
CALLS = {f.__name__: f for f in (
    sp.Symbol, sp.Integer, sp.Float, sp.Rational, sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log, sp.sin, sp.cos,
    sp.tan, sp.tanh, sp.sinh, sp.cosh, sp.asin, sp.acos, sp.atan, sp.asinh, sp.acosh, sp.atanh, sp.erf, sp.erfc,
    sp.Abs, sp.sign, sp.Max, sp.Min, sp.Heaviside, sp.Piecewise, ExprCondPair, sp.StrictGreaterThan,
    sp.StrictLessThan, sp.GreaterThan, sp.LessThan, sp.Equality, sp.Unequality, sp.And, sp.Or, sp.Not,
    sigmoid, softplus, log1p, expm1)}
# name -> sympy constant; only these may be named
CONSTANTS = {"pi": sp.pi, "E": sp.E, "true": sp.true, "false": sp.false, "oo": sp.oo}
# the keyword arguments srepr writes: Float's precision, a Symbol's assumptions (booleans)
ASSUMPTIONS = frozenset({"real", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "integer",
                         "finite", "extended_real"})


class ExpressionTextError(GraphError, ValueError):
    """Expression text that is not a whitelisted sympy expression (see ``parse``)."""


def parse(text: str) -> sp.Basic:
    """The sympy expression of ``srepr`` text, built from whitelisted calls only.

    Raises:
        ExpressionTextError: not Python expression syntax, a name, keyword or
            construct outside the whitelist, a number too large, or sympy
            refusing the arguments.
    """
    if not isinstance(text, str):
        raise ExpressionTextError(f"expected sympy srepr text, got {type(text).__name__}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ExpressionTextError(f"not sympy srepr text: {type(e).__name__}: {e}") from None
    reader = _Reader()
    try:
        return reader.build(tree.body)
    except RecursionError:
        raise ExpressionTextError("the expression nests too deeply") from None


class _Reader:
    def __init__(self):
        self.nodes = 0

    def build(self, node):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionTextError(f"more than {MAX_NODES} calls and literals")
        if isinstance(node, ast.Constant):
            return self.literal(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.build(node.operand)
            if not isinstance(value, (int, float)) and value is not sp.oo:
                raise ExpressionTextError(f"'-' is only for number literals and oo, got -{value}")
            return -value
        if isinstance(node, ast.Name):
            if node.id not in CONSTANTS:
                raise ExpressionTextError(f"unknown name {node.id!r} (allowed: {sorted(CONSTANTS)})")
            return CONSTANTS[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node)
        raise ExpressionTextError(f"{type(node).__name__} is not allowed in expression text "
                                  "(only whitelisted calls, names and literals)")

    def literal(self, value):
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if len(str(abs(value))) > MAX_DIGITS:
                raise ExpressionTextError(f"integer literal of more than {MAX_DIGITS} digits")
            return value
        if isinstance(value, (float, str)):
            return value
        raise ExpressionTextError(f"literal {value!r} of type {type(value).__name__} is not allowed")

    def call(self, node):
        name = node.func.id
        function = CALLS.get(name)
        if function is None:
            raise ExpressionTextError(f"call of {name!r} is not allowed (allowed: {', '.join(sorted(CALLS))})")
        args = [self.build(a) for a in node.args]
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                raise ExpressionTextError(f"{name}(**...) is not allowed")
            kwargs[k.arg] = self.build(k.value)
        self.check(name, args, kwargs)
        try:
            return function(*args, **kwargs)
        except (TypeError, ValueError, AttributeError, ArithmeticError, IndexError, KeyError) as e:
            raise ExpressionTextError(f"sympy refused {name}(...): {type(e).__name__}: {e}") from None

    def check(self, name, args, kwargs):
        """What each call may take: literals only where srepr writes them, bounded numbers."""
        literals = [a for a in args if not isinstance(a, sp.Basic)]
        if name == "Symbol":
            if len(args) != 1 or not isinstance(args[0], str) or not args[0].isidentifier():
                raise ExpressionTextError(f"Symbol takes one identifier, got {args!r}")
            for k, v in kwargs.items():
                if k not in ASSUMPTIONS or not isinstance(v, bool):
                    raise ExpressionTextError(f"Symbol assumption {k}={v!r} is not allowed")
            return
        if name == "Float":
            if len(args) != 1 or not isinstance(args[0], str) or len(args[0]) > 60 or set(kwargs) - {"precision"}:
                raise ExpressionTextError(f"Float takes one decimal string (and precision=), got {args!r}")
            # NOTE: sympy writes Float('1e9999999999') out digit by digit: only finite doubles' exponents
            if not _DECIMAL.fullmatch(args[0]) or not math.isfinite(float(args[0])):
                raise ExpressionTextError(f"Float({args[0]!r}) is not a finite decimal number (exponent of at most "
                                          "3 digits)")
            precision = kwargs.get("precision", 53)
            if not isinstance(precision, int) or isinstance(precision, bool) or not 1 <= precision <= MAX_PRECISION:
                raise ExpressionTextError(f"Float precision must be 1..{MAX_PRECISION}, got {precision!r}")
            return
        if kwargs:
            raise ExpressionTextError(f"{name} takes no keyword arguments, got {sorted(kwargs)}")
        if name in ("Integer", "Rational"):
            if not args or len(args) > 2 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                raise ExpressionTextError(f"{name} takes integer literals, got {args!r}")
            if name == "Rational" and len(args) == 2 and args[1] == 0:
                raise ExpressionTextError("Rational with denominator 0")
            return
        if literals:
            raise ExpressionTextError(f"{name} takes sympy expressions, got the literal {literals[0]!r}")
        if name == "Pow" and len(args) == 2 and args[1].is_Number and args[0].is_number:
            base, exponent = args
            small = base.is_Atom and (not base.is_Rational or max(abs(base.p), base.q) < 10 ** MAX_DIGITS)
            if not small or abs(exponent) > MAX_EXPONENT:
                raise ExpressionTextError(f"a power of a number must be a number of at most {MAX_DIGITS} digits "
                                          f"to at most {MAX_EXPONENT} in size, got ({str(base)[:40]})**({exponent})")
