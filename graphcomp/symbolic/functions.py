"""sympy functions that element-wise expressions may use and that graphcomp prints stably; imports sympy only.

``sigmoid`` and ``softplus`` are also what the stability rewrites (``stable``)
turn overflow-prone forms into, since each has a stable NumPy form.
"""
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p


class sigmoid(sp.Function):  # noqa: N801 - sympy function classes are lower case
    """σ(z) = 1/(1 + exp(-z));  σ'(z) = σ(z)σ(-z)."""

    def fdiff(self, argindex=1):
        z = self.args[0]
        return sigmoid(z) * sigmoid(-z)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))

    def _latex(self, printer, exp=None):
        inner = rf"\sigma\left({printer._print(self.args[0])}\right)"
        return inner if exp is None else rf"{inner}^{{{exp}}}"


class softplus(sp.Function):  # noqa: N801
    """softplus(z) = log(1 + exp(z));  softplus'(z) = σ(z)."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sp.log(1 + sp.exp(z))

    def _latex(self, printer, exp=None):
        inner = rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"
        return inner if exp is None else rf"{inner}^{{{exp}}}"


def clean(expr):
    """``expr`` with these functions (and sympy's log1p, expm1) written in exp and log: what
    sympy differentiates exactly and mpmath evaluates to any precision."""
    return expr.replace(sigmoid, lambda z: 1 / (1 + sp.exp(-z))).replace(
        softplus, lambda z: sp.log(1 + sp.exp(z))).replace(
        log1p, lambda z: sp.log(1 + z)).replace(expm1, lambda z: sp.exp(z) - 1)
