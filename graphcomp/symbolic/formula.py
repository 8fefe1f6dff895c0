"""Derivative formulas rendered from graphcomp's own gradient graph; imports graph, op, autodiff and notation.

``derivative(y, wrt)`` builds the gradient with ``grad`` (each op's VJP rule
is the truth) and renders each node of it with its op's ``math``: sympy is
only the printing layer, never the differentiator of tensor expressions.
"""
from __future__ import annotations

import re

import networkx as nx
import numpy as np
import sympy as sp
from numpy.typing import ArrayLike
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .. import notation
from ..autodiff import grad, sum_to
from ..codegen.names import printable
from ..errors import FeedError, GraphError
from ..graph import Tensor
from ..op import OPS
from ..shapes import is_anonymous, is_free

_DIM_NAMES = "nmpqrs"


def derivative(y: Tensor, wrt: Tensor) -> "Formula":
    """The gradient of ``y`` with respect to ``wrt`` as math.

    The formula is rendered from the gradient nodes ``grad`` adds (the same
    nodes the generated code computes), folded: the user's named nodes and the
    gradients with respect to them stay symbols, defined in ``definitions``.

    Args:
        y: a scalar Tensor (a loss).
        wrt: an input or param node of y's graph (or any float node).

    Returns:
        Formula: ``print`` it, or ``.latex()``, ``.expand()``, ``.chain()``, ``.evaluate(feed)``.

    Raises:
        GradientError: y is not a scalar, or wrt not a float node.
        GraphError: wrt belongs to another graph.

    Example:
        >>> print(gc.derivative(loss, W1))
        ∂loss/∂W1 = xᵀ·(∂loss/∂h ⊙ 𝟙[h > 0])
    """
    if not isinstance(y, Tensor) or not isinstance(wrt, Tensor):
        raise GraphError(f"derivative: y and wrt must be graphcomp Tensors, got {type(y).__name__} and "
                         f"{type(wrt).__name__}")
    g = grad(y, wrt)
    renderer = _Renderer(y.graph, y.name, fold=lambda n: n != g.name)
    expr = renderer.render(g.name)
    return Formula(_gradient_name(y.name, wrt.name), expr, renderer.definitions(expr), renderer, y, wrt)


class Formula:
    """A derivative as math: folded (named intermediates as symbols) or expanded.

    Attributes:
        name: the sympy symbol of the left-hand side (``∂loss/∂W1``).
        folded: the right-hand side as shown, in the symbols of ``definitions``.
        definitions: ``{symbol: its defining expression}``, nearest first.
    """

    def __init__(self, name, folded, definitions, renderer, y, wrt):
        self.name = name
        self.folded = folded
        self.definitions = definitions
        self._renderer = renderer
        self._y, self._wrt = y, wrt
        renderer.latex_names[name] = _gradient_latex(y.name, wrt.name)

    def __str__(self):
        lines = [f"{text(self.name)} = {text(self.folded)}"]
        if self.definitions:
            width = max(len(text(s)) for s in self.definitions)
            lines.append("where")
            lines += [f"  {text(s):<{width}} = {text(e)}" for s, e in self.definitions.items()]
        return "\n".join(lines)

    def __repr__(self):
        return f"<Formula {text(self.name)} = {text(self.folded)}>"

    def latex(self) -> str:
        """LaTeX: one ``aligned`` block, the formula then each definition."""
        rows = [(self.name, self.folded), *self.definitions.items()]
        body = r" \\ ".join(f"{self._latex(s)} &= {self._latex(e)}" for s, e in rows)
        return rf"\begin{{aligned}} {body} \end{{aligned}}"

    def _repr_latex_(self):
        return f"$${self.latex()}$$"

    def _latex(self, e):
        return Latex(self._renderer.latex_names).doprint(e)

    def expand(self, levels: int | None = None) -> "Formula":
        """The same formula with named intermediates substituted: ``levels`` times, or all."""
        expr, left = self.folded, dict(self.definitions)
        k = 0
        while (levels is None or k < levels) and (expr.free_symbols | _matrix_symbols(expr)) & left.keys():
            expr = expr.xreplace(left).doit(deep=True)
            k += 1
        return Formula(self.name, expr, _reachable(expr, left), self._renderer, self._y, self._wrt)

    def sympy(self) -> sp.Basic:
        """The sympy expression behind the formula, in the graph's inputs and params only."""
        return self.expand().folded

    def evaluate(self, feed: dict[str, ArrayLike]) -> np.ndarray:
        """The formula's value, computed with NumPy from the formula itself (not the generated code).

        Args:
            feed: ``{input or param name: array}`` for every leaf the formula uses.
        """
        values = self._renderer.values(feed)
        for symbol, e in reversed(self.definitions.items()):
            values[symbol] = evaluate(e, values)
        out = np.asarray(evaluate(self.folded, values), dtype=float)
        shape = tuple(values[self._renderer.dim(d)] if is_free(d) else d for d in self._wrt.shape)
        return np.broadcast_to(out, notation.dims(shape)).reshape(shape)

    def chain(self) -> "Chain":
        """The backpropagation table: one row per step on the path from y back to wrt."""
        return Chain.of(self._y, self._wrt)


def _matrix_symbols(e):
    return set(e.atoms(sp.MatrixSymbol))


def _reachable(expr, definitions):
    """The definitions ``expr`` needs, directly or through others, in their order."""
    need, frontier = set(), [expr]
    while frontier:
        e = frontier.pop()
        for s in e.free_symbols | _matrix_symbols(e):
            if s in definitions and s not in need:
                need.add(s)
                frontier.append(definitions[s])
    return {s: e for s, e in definitions.items() if s in need}


class _Renderer:
    """Renders nodes of a graph as notation.

    A non-leaf node is shown as a symbol where ``fold(name)`` allows it and
    ``shown(name, attrs)`` gives its ``(text, latex)``: by default the
    user's named nodes and the gradients with respect to them.
    """

    def __init__(self, graph, y_name, fold, shown=None):
        self.graph = graph
        self.y_name = y_name
        self.fold = fold
        self._shown = shown or self._named
        self.dim_symbols = {}
        self.exprs = {}
        self.defined = {}          # symbol -> expression, in creation order of the nodes
        self.symbols = {}          # symbol -> node name (leaves)
        self.latex_names = {}

    def dim(self, d):
        if not is_free(d):
            return sp.Integer(d)
        root = self.graph.dim(d)
        if root not in self.dim_symbols:
            if is_anonymous(root):
                k = sum(is_anonymous(r) for r in self.dim_symbols)
                name = _DIM_NAMES[k] if k < len(_DIM_NAMES) else f"n{k}"
            else:
                name = root
            self.dim_symbols[root] = sp.Symbol(name, positive=True, integer=True)
        return self.dim_symbols[root]

    def shape(self, name):
        return tuple(self.dim(d) for d in self.graph.nx.nodes[name]["shape"])

    def symbol(self, name, shown, latex):
        s = notation.symbol(shown, self.shape(name))
        self.latex_names[s] = latex
        return s

    def render(self, root):
        """The expression of node ``root``; nodes it needs are rendered first (no recursion)."""
        nodes = self.graph.nx.nodes
        for n in self.graph.order(self.graph.upstream([root])):
            if n in self.exprs:
                continue
            attrs = nodes[n]
            op = OPS[attrs["op"]]
            if op.leaf:
                self.exprs[n] = s = self.symbol(n, n, _latex_symbol(n))
                self.symbols[s] = n
                continue
            expr = op.math((self.shape(n), *(self.shape(a) for a in attrs["args"])),
                           *(self.exprs[a] for a in attrs["args"]), **attrs["params"])
            shown = self._shown(n, attrs)
            if shown is not None and self.fold(n):
                s = self.symbol(n, *shown)
                self.defined[s] = expr
                expr = s
            self.exprs[n] = expr
        return self.exprs[root]

    def _named(self, n, attrs):
        """``(text, latex)`` of a node shown as a symbol, or None to show its expression."""
        if attrs.get("named") and not attrs["note"]:
            return n, _latex_symbol(n)
        of = attrs.get("total_of")
        if of is not None and of in self.graph._names:
            forward = self.graph._names[of]
            fattrs = self.graph.nx.nodes[forward]
            if fattrs.get("named") or OPS[fattrs["op"]].leaf:
                return _gradient_text(self.y_name, forward), _gradient_latex(self.y_name, forward)
        return None

    def definitions(self, expr):
        return dict(reversed(_reachable(expr, self.defined).items()))

    def values(self, feed):
        """Numeric values of the leaf symbols and dims, from a feed (vectors as 1 × k rows)."""
        values = {}
        for s, name in self.symbols.items():
            if name not in feed:
                raise FeedError(f"the formula needs a value for {name!r}")
            v = np.asarray(feed[name])
            values[s] = v.reshape(1, -1) if v.ndim == 1 else v
            for d, size in zip(self.graph.nx.nodes[name]["shape"], v.shape):
                if is_free(d):
                    values[self.dim(d)] = size
        return values


def _latex_symbol(name):
    """A node name in LaTeX: sympy's own form for plain names (W1 → W_{1}), else upright text."""
    if re.fullmatch(r"[A-Za-z]+\d*|[A-Za-z]+_[A-Za-z0-9]", name):
        return sp.latex(sp.Symbol(name))
    return rf"\mathrm{{{notation._latex_name(name)}}}"


def _gradient_text(y, x):
    return f"∂{y}/∂{x}"


def _gradient_latex(y, x):
    return rf"\frac{{\partial {_latex_symbol(y)}}}{{\partial {_latex_symbol(x)}}}"


def _gradient_name(y, x):
    return sp.Symbol(_gradient_text(y, x))


# ---- printing ---------------------------------------------------------------------------------------


_COMPOUND = (sp.MatAdd, sp.HadamardProduct, sp.HadamardPower, sp.Add)


def _sum(printer, e, minus):
    """A matrix sum printed term by term, subtractions last and written with ``minus``."""
    terms = [printer._print(t) for t in sorted(e.args, key=lambda t: t.could_extract_minus_sign())]
    out = terms[0]
    for t in terms[1:]:
        out += f"{minus}{t[1:].lstrip()}" if t.startswith("-") else f" + {t}"
    return out


class Text(StrPrinter):
    """One-line text in textbook notation: ``xᵀ·(G ⊙ 𝟙[h > 0])``."""

    def _print_MatrixSymbol(self, e):
        return printable(e.name)

    def _print_Symbol(self, e):
        return printable(e.name)

    def _factor(self, e):
        return f"({self._print(e)})" if isinstance(e, _COMPOUND) else self.parenthesize(e, PRECEDENCE["Mul"])

    def _print_MatMul(self, e):
        coeff, factors = e.as_coeff_mmul()
        matrices = [f for f in factors.args if getattr(f, "is_Matrix", False)] if factors.is_MatMul else [factors]
        scalars = sp.Mul(coeff, *(f for f in (factors.args if factors.is_MatMul else ()) if not f.is_Matrix))
        body = "·".join(self._factor(m) for m in matrices)
        if scalars == 1:
            return body
        if scalars == -1:
            return f"-{body}"
        num, den = scalars.as_numer_denom()
        if num == 1:
            return f"{self.parenthesize(factors, PRECEDENCE['Mul'], strict=True) if len(matrices) > 1 else body}" \
                   f"/{self.parenthesize(den, PRECEDENCE['Pow'])}"
        return f"{self.parenthesize(scalars, PRECEDENCE['Mul'])}·{body}"

    def _print_MatAdd(self, e):
        return _sum(self, e, " − ")

    def _print_HadamardProduct(self, e):
        return " ⊙ ".join(self._factor(a) for a in e.args)

    def _print_HadamardPower(self, e):
        return f"{self.parenthesize(e.base, PRECEDENCE['Pow'], strict=True)}^∘{self._print(e.exp)}"

    def _print_Transpose(self, e):
        return f"{self.parenthesize(e.arg, PRECEDENCE['Pow'], strict=True)}ᵀ"

    def _print_ZeroMatrix(self, e):
        return "0"


class Latex(LatexPrinter):
    """LaTeX with ⊙ for the Hadamard product and graphcomp's names for symbols."""

    def __init__(self, names):
        super().__init__({"symbol_names": names, "mat_symbol_style": "plain"})

    def _print_HadamardProduct(self, e):
        return r" \odot ".join(self._factor(a) for a in e.args)

    def _factor(self, e):
        return rf"\left({self._print(e)}\right)" if isinstance(e, _COMPOUND) else \
            self.parenthesize(e, PRECEDENCE["Mul"])

    def _print_MatAdd(self, e):
        return _sum(self, e, " - ")

    def _print_Symbol(self, e, style="plain"):
        return self._settings["symbol_names"].get(e) or super()._print_Symbol(e, style)

    def _print_MatrixSymbol(self, e):
        return self._settings["symbol_names"].get(e) or super()._print_MatrixSymbol(e)


def text(e):
    return Text().doprint(e)


# ---- evaluation -------------------------------------------------------------------------------------


def evaluate(e, values):
    """The NumPy value of a notation expression, given values of its symbols."""
    if e in values:
        return values[e]
    if isinstance(e, notation.Notation):
        if isinstance(e, (notation.Apply, notation.Of)) and e.name not in notation.NUMERIC:
            raise GraphError(f"cannot evaluate {e.name}(...): the op has no NumPy form in notation.NUMERIC")
        out = e.numeric(*(evaluate(a, values) for a in e.operands))
        if getattr(e, "is_Matrix", False):       # NumPy's (k,) is the notation's 1 × k row
            shape = tuple(int(evaluate(d, values)) for d in e.shape)
            out = np.reshape(out, shape) if np.size(out) == np.prod(shape) else np.broadcast_to(out, shape)
        return out
    if not getattr(e, "is_Matrix", False) and not e.atoms(sp.MatrixExpr) and not e.atoms(notation.Notation):
        free = sorted(e.free_symbols, key=sp.default_sort_key)
        return sp.lambdify(free, e, modules=["scipy", "numpy"])(*(values[s] for s in free))
    if isinstance(e, sp.MatMul):
        out = 1.0
        for a in e.args:
            v = evaluate(a, values)
            out = out @ v if getattr(a, "is_Matrix", False) and np.ndim(out) == 2 else out * v
        return out
    if isinstance(e, (sp.MatAdd, sp.Add)):
        return sum(evaluate(a, values) for a in e.args)
    if isinstance(e, (sp.HadamardProduct, sp.Mul)):
        out = 1.0
        for a in e.args:
            out = out * evaluate(a, values)
        return out
    if isinstance(e, (sp.HadamardPower, sp.Pow)):
        return evaluate(e.args[0], values) ** evaluate(e.args[1], values)
    if isinstance(e, sp.Transpose):
        return np.swapaxes(evaluate(e.arg, values), -1, -2)
    if isinstance(e, sp.ZeroMatrix):
        return 0.0
    if isinstance(e, sp.ImmutableMatrix):
        return np.array(e.tolist(), dtype=float)
    if isinstance(e, sp.Function):
        return sp.lambdify(list(sp.symbols(f"a:{len(e.args)}")), e.func(*sp.symbols(f"a:{len(e.args)}")),
                           modules=["scipy", "numpy"])(*(evaluate(a, values) for a in e.args))
    raise GraphError(f"cannot evaluate {type(e).__name__} ({e})")


# ---- the chain table --------------------------------------------------------------------------------


class Chain:
    """Backpropagation as a table: for each step from y back to wrt, the node, its local derivative
    (applied to □, the upstream gradient), the upstream gradient and their product."""

    def __init__(self, rows, latex_names):
        self.rows = rows
        self._latex_names = latex_names

    @classmethod
    def of(cls, y, wrt):
        graph = y.graph
        on_path = (nx.descendants(graph.nx, wrt.name) | {wrt.name}) & graph.upstream([y.name])
        first_new = graph._count
        rows, names = [], {}
        try:
            for v in reversed(graph.order(on_path - {wrt.name})):
                node = graph[v]
                # a leaf of the node's own shape (its free dims too: no new dim is made)
                upstream = graph.apply("input", (), {"shape": node.shape, "dtype": node.dtype},
                                       graph.unique_name("upstream"))
                with graph.noting("chain table"):
                    cts = OPS[node.op].vjp(upstream, node, *node.args, **node.params)
                    for arg, ct in zip(node.args, cts, strict=True):
                        if ct is None or arg.name not in on_path:
                            continue
                        ct = sum_to(ct, arg)
                        renderer = _Renderer(graph, y.name, fold=lambda n: graph.nx.nodes[n]["index"] < first_new,
                                             shown=lambda n, attrs: (n, _latex_symbol(n)))
                        product = renderer.render(ct.name)
                        up = renderer.exprs[upstream.name]
                        shown = notation.symbol(_gradient_text(y.name, v), renderer.shape(v)) if v != y.name \
                            else sp.Integer(1)
                        box = notation.symbol("□", renderer.shape(v))
                        local = product.xreplace({up: box})
                        product = product.xreplace({up: shown})
                        names.update(renderer.latex_names)
                        names[box] = r"\square"
                        gradient = notation.symbol(_gradient_text(y.name, arg.name), renderer.shape(arg.name))
                        rows.append(ChainRow(v, OPS[node.op].formula(*node._attrs["args"], **node.params),
                                             arg.name, local, shown, gradient, product))
        finally:
            graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first_new])
        names.update({r.gradient: _gradient_latex(y.name, r.arg) for r in rows})
        names.update({r.upstream: _gradient_latex(y.name, r.node) for r in rows if r.node != y.name})
        return cls(rows, names)

    def __str__(self):
        head = ("node", "step", "local derivative (□ = upstream)", "upstream", "product")
        table = [head] + [(r.node, r.step, text(r.local), text(r.upstream), f"{text(r.gradient)} = {text(r.product)}")
                          for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def latex(self):
        """LaTeX ``align``: each step's product, with the step it comes from."""
        p = Latex(self._latex_names)
        rows = [rf"{p.doprint(r.gradient)} &= {p.doprint(r.product)} && \text{{{_latex_text(r.step)}}}"
                for r in self.rows]
        return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"

    def _repr_latex_(self):
        return self.latex()


class ChainRow:
    """One step of the chain: ``∂y/∂arg = local(∂y/∂node)``."""

    def __init__(self, node, step, arg, local, upstream, gradient, product):
        self.node, self.step, self.arg = node, f"{node} = {step}", arg
        self.local, self.upstream, self.gradient, self.product = local, upstream, gradient, product

    def __repr__(self):
        return f"<ChainRow {text(self.gradient)} = {text(self.product)}>"


def _latex_text(s):
    return notation._latex_name(s)
