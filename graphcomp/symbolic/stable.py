"""Stability rewrites applied when an expression is printed as NumPy, never before it is differentiated;
imports sympy and symbolic.functions.

sympy differentiates the clean mathematical form; the printed form of f and
of each derivative is then rewritten, separately, into forms that neither
overflow nor lose everything to cancellation:

- ``(1 + exp(a))**-n`` becomes ``σ(-a)**n``, and ``exp(a)·σ(-a)`` becomes ``σ(a)``
  (so ``exp(-z)/(1 + exp(-z))**2``, sympy's σ'(z), becomes ``σ(z)σ(-z)``);
- ``log(1 + exp(a))`` becomes ``softplus(a)`` and ``log(σ(a))`` becomes ``-softplus(-a)``;
- ``log(1 + a)`` becomes ``log1p(a)`` and ``exp(a) - 1`` becomes ``expm1(a)``;
- in a ``Piecewise`` branch that holds an exponential, the variable of the
  branch's condition is clamped to the branch's own interval, so the branch
  NumPy also evaluates where it is not selected cannot overflow (ELU's
  ``exp(z) - 1`` is printed as ``expm1(minimum(z, 0))``).

``checked`` compares the rewritten form with the clean one in 50-digit
arithmetic at sample points; a rewrite that changed a value is a bug, and
raises rather than printing a wrong function.
"""
import itertools

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .functions import clean, sigmoid, softplus

_OVERFLOWS = (sp.exp, sp.sinh, sp.cosh, expm1)


def stable(expr):
    """``expr`` rewritten into forms whose NumPy evaluation neither overflows nor cancels."""
    expr = expr.replace(_is_log_one_plus_exp, lambda e: softplus(_exp_arg(e.args[0])))
    expr = expr.replace(_is_one_plus_exp_power, lambda e: sigmoid(-_exp_arg(e.base)) ** -e.exp)
    expr = expr.replace(lambda e: e.is_Mul, _merge_sigmoids)
    expr = expr.replace(lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sigmoid),
                        lambda e: -softplus(-e.args[0].args[0]))
    expr = expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].is_Add and 1 in e.args[0].args,
                        lambda e: log1p(e.args[0] - 1))
    expr = expr.replace(_has_exp_minus_one, _expm1)
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), _clamp_branches)


def _exp_arg(one_plus_exp):
    """``a`` of ``1 + exp(a)``."""
    return next(t for t in one_plus_exp.args if isinstance(t, sp.exp)).args[0]


def _is_one_plus_exp(e):
    return e.is_Add and len(e.args) == 2 and 1 in e.args and any(isinstance(t, sp.exp) for t in e.args)


def _is_log_one_plus_exp(e):
    return isinstance(e, sp.log) and _is_one_plus_exp(e.args[0])


def _is_one_plus_exp_power(e):
    return e.is_Pow and _is_one_plus_exp(e.base) and e.exp.is_Integer and e.exp < 0


def _merge_sigmoids(mul):
    """``exp(-k·u)·σ(u)**n`` with 1 <= k <= n becomes ``σ(-u)**k·σ(u)**(n - k)``."""
    factors = list(mul.args)
    for i, j in itertools.permutations(range(len(factors)), 2):
        e, s = factors[i], factors[j]
        base, n = s.as_base_exp()
        if not (isinstance(e, sp.exp) and isinstance(base, sigmoid) and n.is_Integer and n > 0):
            continue
        u = base.args[0]
        k = sp.simplify(-e.args[0] / u)
        if k.is_Integer and 1 <= k <= n:
            factors[i], factors[j] = sigmoid(-u) ** k, base ** (n - k)
            return _merge_sigmoids(sp.Mul(*factors)) if sp.Mul(*factors).is_Mul else sp.Mul(*factors)
    return mul


def _has_exp_minus_one(e):
    return e.is_Add and -1 in e.args and any(isinstance(t, sp.exp) for t in e.args)


def _expm1(add):
    """``exp(a) - 1 + rest`` becomes ``expm1(a) + rest``."""
    terms = list(add.args)
    exp = next(t for t in terms if isinstance(t, sp.exp))
    terms.remove(exp)
    terms.remove(-1)
    return sp.Add(expm1(exp.args[0]), *terms)


def _clamp_branches(piecewise):
    """Each branch holding an exponential sees its condition's variable clamped to its interval."""
    free = set().union(*(cond.free_symbols for _, cond in piecewise.args))
    if len(free) != 1:                      # conditions in several variables: left as they are
        return piecewise
    (var,) = free
    seen = sp.S.EmptySet
    branches = []
    for value, cond in piecewise.args:
        where = (sp.S.Reals if cond == sp.true else cond.as_set()) - seen
        seen = seen | where
        if value.has(*_OVERFLOWS) and where.is_Interval:
            clamped = var
            if where.sup.is_finite:
                clamped = sp.Min(clamped, where.sup)
            if where.inf.is_finite:
                clamped = sp.Max(clamped, where.inf)
            value = value.subs(var, clamped)
        branches.append((value, cond))
    return sp.Piecewise(*branches)


def checked(expr, rewritten, symbols, params):
    """Raise ArithmeticError if ``rewritten`` differs from ``expr`` at sample points (50 digits).

    ``params`` maps parameter symbols to the values they are checked at.
    """
    reference = sp.lambdify([*symbols, *params], clean(expr), modules="mpmath")
    candidate = sp.lambdify([*symbols, *params], clean(rewritten), modules="mpmath")
    samples = np.array([-7.25, -2.5, -0.75, -0.125, 0.375, 1.5, 3.25, 6.5])
    with mpmath.workdps(50):
        for point in itertools.islice(itertools.product(samples, repeat=len(symbols)), 64):
            values = [*map(mpmath.mpf, point), *(mpmath.mpf(v) for v in params.values())]
            try:
                want = reference(*values)
            except (ZeroDivisionError, ValueError):     # outside the domain: nothing to compare
                continue
            if not isinstance(want, mpmath.mpf):        # complex: outside the real domain
                continue
            got = candidate(*values)
            if abs(got - want) > mpmath.mpf(10) ** -30 * (1 + abs(want)):
                raise ArithmeticError(f"stability rewrite changed {expr} into {rewritten}: "
                                      f"{got} != {want} at {point}")
