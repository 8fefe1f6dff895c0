"""Numeric gradient checks: generated gradients against central finite differences, and the node
whose rule is wrong; imports graph, op, autodiff, codegen."""
from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .autodiff import _between, grad
from .codegen.compiled import compile
from .codegen.names import printable
from .errors import FeedError, GradientError, GraphError
from .graph import Graph, Tensor
from .op import OPS, no_gradient


@dataclass(frozen=True)
class Precision:
    """What a check in one dtype uses (see docs/api.md#checking).

    Attributes:
        eps: the default step of the whole-function check; ``scaled``: it is
            relative, ``eps * max(1, |x_i|)``, else absolute.
        rtol, atol: the default pass rule of the whole-function check.
        node_rtol: the pass rule of one node's check (relative to the size of
            the terms compared, see ``_check_node``).
    """

    eps: float
    scaled: bool
    rtol: float
    atol: float
    node_rtol: float


# float64: the first release's step and rule. float32: step eps^(1/3) (the step that balances the
# truncation error h^2 against rounding eps/h), rtol as JAX's check_grads uses for float32, atol for
# the rounding of a float32 loss of size ~1 divided by that step (eps / h ~ 2.4e-5).
PRECISIONS = {
    "float64": Precision(eps=1e-6, scaled=False, rtol=1e-5, atol=1e-8, node_rtol=1e-5),
    "float32": Precision(eps=float(np.cbrt(np.finfo(np.float32).eps)), scaled=True, rtol=2e-3, atol=1e-4,
                         node_rtol=2e-3),
}
NODE_ELEMENTS = 16     # a node's arg with at most this many elements is checked element by element,
NODE_DIRECTIONS = 4    # a larger one along this many random directions


@dataclass(frozen=True)
class GradientRow:
    """The check of one node's gradient.

    ``checked`` counts elements, or random directions when ``kind`` is
    ``"directions"`` (then the errors are those of the directional derivatives).
    """

    name: str
    shape: tuple
    checked: int          # elements (or directions) compared
    max_abs_error: float
    max_rel_error: float  # max |analytic - numeric| / max |numeric| (norm-wise, so tiny entries don't blow up)
    ok: bool
    kind: str = "elements"


@dataclass(frozen=True)
class NodeCheck:
    """The check of one node's VJP rule on its own, at the values its args had in the forward pass.

    ``ok`` is None when the node was skipped; ``reason`` says why (or, for a
    failure, which argument disagrees).
    """

    name: str
    op: str
    formula: str
    checked: int          # elements or directions compared, over the args checked
    max_rel_error: float
    ok: bool | None
    reason: str = ""

    @property
    def result(self):
        return {True: "pass", False: "FAIL", None: "skipped"}[self.ok]


@dataclass(frozen=True)
class GradientReport:
    """Result of ``check_gradients``: one row per node; ``ok`` when every row passes.

    ``nodes`` holds the per-node checks of the fault localization (empty when
    it did not run) and ``faulty`` the names of the nodes whose rule failed.
    """

    loss: str
    rows: tuple
    eps: float
    rtol: float
    atol: float
    dtype: str = "float64"
    scaled: bool = False
    nodes: tuple = ()
    localized: bool = False

    @property
    def ok(self):
        return all(r.ok for r in self.rows)

    @property
    def faulty(self):
        """Names of the nodes whose VJP rule disagrees with central differences ([] if none)."""
        return [n.name for n in self.nodes if n.ok is False]

    def __getitem__(self, name):
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def step(self):
        return f"eps={self.eps:g}" + (" * max(1, |x|)" if self.scaled else "")

    @property
    def verdict(self):
        return "all gradients match" if self.ok else "GRADIENT MISMATCH"

    @property
    def diagnosis(self):
        """One line on what the localization found (empty if it did not run)."""
        if not self.localized:
            return ""
        faulty = [n for n in self.nodes if n.ok is False]
        if faulty:
            return "faulty: " + "; ".join(f"{printable(n.name)} ({n.op}): {n.reason}" for n in faulty)
        if self.ok:
            return "no faulty node: every rule on the path matches central differences"
        kinked = [f"{printable(n.name)} ({n.op})" for n in self.nodes if n.ok and n.reason]
        if kinked:
            return (f"no node's rule is wrong, but differences crossed kinks at {', '.join(kinked)}: the "
                    "mismatch is likely the finite differences' own (check in float64, or with a smaller eps)")
        return ("no single node's rule is wrong: suspect the gradients given, or a rule that spans "
                "nodes (a fused VJP)")

    def __str__(self):
        head = (f"gradient check of {self.loss!r}: central differences in {self.dtype}, "
                f"{self.step}, pass if |err| <= {self.atol:g} + {self.rtol:g} * |numeric|")
        cols = f"{'node':<16} {'shape':<14} {'checked':>8} {'max abs err':>12} {'max rel err':>12}  result"
        lines = [head, cols, "-" * len(cols)]
        for r in self.rows:
            checked = f"{r.checked}{' dir' if r.kind == 'directions' else ''}"
            lines.append(f"{printable(r.name):<16} {str(r.shape):<14} {checked:>8} {r.max_abs_error:>12.3e} "
                         f"{r.max_rel_error:>12.3e}  {'pass' if r.ok else 'FAIL'}")
        lines.append(self.verdict)
        if self.localized:
            lines += ["", "each node's VJP rule alone, at its forward values:",
                      f"{'node':<16} {'op':<14} {'checked':>8} {'max rel err':>12}  result"]
            for n in self.nodes:
                err = f"{n.max_rel_error:>12.3e}" if n.ok is not None else f"{'':>12}"
                why = f": {n.reason}" if n.reason else ""
                lines.append(f"{printable(n.name):<16} {n.op:<14} {n.checked:>8} {err}  {n.result}{why}")
            lines.append(self.diagnosis)
        return "\n".join(lines)

    def _repr_html_(self):
        """A table for notebooks: one row per node, then the localization if it ran."""
        def row(cells, tag="td"):
            return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

        parts = [f"<p><b>gradient check of {html.escape(printable(self.loss))}</b>: central differences "
                 f"in {self.dtype}, {html.escape(self.step)}, pass if |err| &le; {self.atol:g} + "
                 f"{self.rtol:g} &middot; |numeric|</p>", "<table>",
                 row(["node", "shape", "checked", "max abs err", "max rel err", "result"], "th")]
        parts += [row([printable(r.name), r.shape, f"{r.checked}{' directions' if r.kind == 'directions' else ''}",
                       f"{r.max_abs_error:.3e}", f"{r.max_rel_error:.3e}", "pass" if r.ok else "FAIL"])
                  for r in self.rows]
        parts += ["</table>", f"<p><b>{self.verdict}</b></p>"]
        if self.localized:
            parts += ["<p>each node's VJP rule alone, at its forward values:</p>", "<table>",
                      row(["node", "op", "checked", "max rel err", "result", "note"], "th")]
            parts += [row([printable(n.name), n.op, n.checked,
                           f"{n.max_rel_error:.3e}" if n.ok is not None else "", n.result, n.reason])
                      for n in self.nodes]
            parts += ["</table>", f"<p>{html.escape(self.diagnosis)}</p>"]
        return "\n".join(parts)

    def _repr_latex_(self):
        """The table as a LaTeX array (what notebooks render with MathJax)."""
        def text(s):
            return _latex_text(str(s))

        lines = [r"\begin{array}{lrrrrl}",
                 " & ".join(text(c) for c in ("node", "shape", "checked", "max abs err", "max rel err",
                                               "result")) + r" \\ \hline"]
        lines += [" & ".join([text(printable(r.name)), text(r.shape), str(r.checked),
                              _latex_number(r.max_abs_error), _latex_number(r.max_rel_error),
                              text("pass" if r.ok else "FAIL")]) + r" \\" for r in self.rows]
        if self.localized:
            lines.append(r"\hline " + " & ".join(text(c) for c in ("node (alone)", "op", "checked", "",
                                                                   "max rel err", "result")) + r" \\ \hline")
            lines += [" & ".join([text(printable(n.name)), text(n.op), str(n.checked), "",
                                  _latex_number(n.max_rel_error) if n.ok is not None else "",
                                  text(n.result)]) + r" \\" for n in self.nodes]
        lines.append(r"\end{array}")
        return "$$\n" + "\n".join(lines) + "\n$$"


# characters LaTeX gives a meaning, written as math symbols between \text{} runs (MathJax, which
# notebooks use, reads \text{} literally, so they cannot be escaped inside it)
_LATEX = {"\\": r"\backslash ", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
          "%": r"\%", "_": r"\_", "^": r"\hat{}", "~": r"\sim "}


def _latex_text(s):
    """``s`` as LaTeX math: its plain runs in ``\text{}``, its special characters as symbols."""
    return "".join(_LATEX.get(part) or rf"\text{{{part}}}" for part in re.split(r"([\\{}$&#%_^~])", s) if part)


def _latex_number(x):
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{mantissa} \\times 10^{{{int(exponent)}}}"


def check_gradients(loss: Tensor, wrt: Sequence[Tensor], feed: Mapping[str, ArrayLike], *,
                    eps: float | None = None, rtol: float | None = None, atol: float | None = None,
                    max_checks: int | None = None, seed: int = 0, gradients: Sequence[Tensor] | None = None,
                    dtype: str = "float64", directions: int | None = None,
                    localize: bool | None = None) -> GradientReport:
    """Compare the generated gradients of ``loss`` against central finite differences.

    Both sides run generated code. By default (``dtype="float64"``) a float32
    (or float16) graph is checked through a float64 copy of the nodes
    involved, with the float values of ``feed`` converted, so the check is
    tight whatever the model's precision; ``dtype="float32"`` checks the
    float32 arithmetic itself, with a relative step and float32 tolerances.

    When a gradient does not match (or ``localize=True``), each node on the
    path from ``wrt`` to ``loss`` is then checked alone: its VJP rule, given a
    random cotangent, against central differences of that node's op at the
    values its args had in the forward pass. ``report.faulty`` names the nodes
    whose rule is wrong.

    Args:
        loss: scalar Tensor.
        wrt: list of float Tensors (params or inputs) to check.
        feed: dict node name -> array with every value ``loss`` needs.
        eps: finite-difference step; default 1e-6 in float64, and
            ``eps_32 ** (1/3) * max(1, |x_i|)`` (about 4.9e-3 at |x_i| <= 1)
            in float32.
        rtol, atol: pass rule ``|a - n| <= atol + rtol * |n|``; default
            1e-5 and 1e-8 in float64, 2e-3 and 1e-4 in float32.
        max_checks: check at most this many elements per node (chosen at
            random with ``seed``); None checks all.
        gradients: the gradient Tensors to test (default ``grad(loss, wrt)``);
            pass your own to test a hand-built gradient.
        dtype: ``"float64"`` or ``"float32"``: the arithmetic of the check.
        directions: check this many random directions per node instead of
            elements (1 is the peers' one-projection check: two evaluations
            of the loss per node, whatever its size).
        localize: True always checks each node alone, False never, None
            (default) when a gradient does not match.

    Returns:
        GradientReport: ``print`` it for a table; ``.ok`` is the verdict,
        ``.faulty`` the nodes whose rule is wrong.

    Raises:
        FeedError: a needed value is missing or malformed.
        GradientError: ``gradients`` does not match ``wrt``, a ``wrt`` node
            is computed rather than fed, or ``dtype``/``directions`` is invalid.
    """
    precision = PRECISIONS.get(dtype)
    if precision is None:
        raise GradientError(f"check_gradients: dtype must be 'float64' or 'float32', got {dtype!r}")
    if directions is not None and (isinstance(directions, bool) or not isinstance(directions, int)
                                   or directions < 1):
        raise GradientError(f"check_gradients: directions must be a positive int or None, got {directions!r}")
    scaled = precision.scaled and eps is None
    eps = precision.eps if eps is None else eps
    rtol = precision.rtol if rtol is None else rtol
    atol = precision.atol if atol is None else atol
    wrt = list(wrt)
    for w in wrt:
        if isinstance(w, Tensor) and not OPS[w.op].leaf:
            raise GradientError(f"check_gradients: {w.name!r} is computed ({w.op}), not fed; central "
                                "differences perturb fed values, so check the params or inputs it comes from")
    grads = grad(loss, wrt) if gradients is None else list(gradients)
    if len(grads) != len(wrt):
        raise GradientError(f"check_gradients: {len(grads)} gradients for {len(wrt)} nodes")
    loss, wrt, grads = _in_dtype(loss, wrt, grads, dtype)
    f_loss = compile(loss)
    f_grads = compile(grads)
    # C order, so that flat views below perturb the very arrays that are fed
    values = {k: _as_float(np.array(v, copy=True, order="C"), dtype) for k, v in feed.items()}
    for name in (*f_loss.inputs, *f_grads.inputs, *(w.name for w in wrt)):
        if name not in values:
            raise FeedError(f"check_gradients: feed has no value for {name!r}")
    analytic = _call(f_grads, values)
    fed = {k: values[k] for k in f_loss.inputs}
    rng = np.random.default_rng(seed)
    rows = []
    for w, a in zip(wrt, analytic, strict=True):
        used = w.name in fed
        x = fed[w.name] if used else values[w.name]
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), x.shape).reshape(-1)
        step = eps * (np.maximum(1.0, np.abs(x.reshape(-1).astype(np.float64))) if scaled else np.ones(x.size))
        f = (lambda: float(f_loss(**fed))) if used else None     # None: the loss does not read it
        if directions is None:
            rows.append(_elements(w.name, x, a, step, f, max_checks, rng, rtol, atol))
        else:
            rows.append(_directions(w.name, x, a, step, f, directions, rng, rtol, atol))
    report = GradientReport(loss.name, tuple(rows), eps, rtol, atol, dtype, scaled)
    if localize or (localize is None and not report.ok):
        nodes = _localize(loss, wrt, values, precision, rng)
        report = GradientReport(loss.name, tuple(rows), eps, rtol, atol, dtype, scaled, nodes, True)
    return report


def _elements(name, x, a, step, f, max_checks, rng, rtol, atol):
    """The row of node ``name``: each element (or ``max_checks`` sampled ones) of fed array ``x``
    perturbed by ``step`` in place, the loss ``f`` differenced, against analytic gradient ``a``."""
    flat = x.reshape(-1)
    picks = np.arange(flat.size)
    if max_checks is not None and flat.size > max_checks:
        picks = np.sort(rng.choice(flat.size, max_checks, replace=False))
    numeric = np.zeros(picks.size)      # a node the loss does not read has zero gradient
    for i, k in enumerate(picks if f is not None else ()):
        saved = flat[k]
        flat[k] = saved + step[k]
        high, up = float(flat[k]), f()
        flat[k] = saved - step[k]
        low, down = float(flat[k]), f()
        flat[k] = saved
        if high == low:
            raise GradientError(f"check_gradients: step {step[k]:g} is below the resolution of {x.dtype} at "
                                f"{name!r}[{k}] = {saved!s}; give a larger eps")
        numeric[i] = (up - down) / (high - low)     # the step the dtype could represent
    err = np.abs(a[picks] - numeric)
    scale = np.max(np.abs(numeric), initial=0.0)
    worst = float(np.max(err, initial=0.0))
    return GradientRow(name=name, shape=tuple(x.shape), checked=int(picks.size), max_abs_error=worst,
                       max_rel_error=worst / scale if scale else worst,
                       ok=bool(np.all(err <= atol + rtol * np.abs(numeric))))


def _directions(name, x, a, step, f, count, rng, rtol, atol):
    """The row of node ``name``: ``count`` random directional derivatives, each from two
    evaluations of the loss ``f``, against ``a`` projected on the same directions.

    Along a unit direction u: the error is ``|a . u - numeric|``, and the pass
    rule ``atol + rtol * max(sum |a_i u_i|, |numeric|)``: relative to the size of
    the terms, so cancellation in the sum cannot make a right gradient look wrong.
    """
    flat = x.reshape(-1)
    saved = flat.copy()
    errors, scales = [], []
    for _ in range(count if f is not None else 0):
        d = rng.standard_normal(flat.size) * step
        flat[:] = saved + d
        high, up = flat.astype(np.float64), f()
        flat[:] = saved - d
        low, down = flat.astype(np.float64), f()
        flat[:] = saved
        half = (high - low) / 2                  # the perturbation the dtype could represent
        numeric, terms = (up - down) / 2, a * half
        size = float(np.linalg.norm(half)) or 1.0     # per unit of length: gradient units
        errors.append(abs(float(terms.sum()) - numeric) / size)
        scales.append(max(float(np.abs(terms).sum()), abs(numeric)) / size)
    if f is None:       # the loss does not read it: the gradient must be zero
        errors, scales = [float(np.abs(a).max(initial=0.0))], [0.0]
    errors, scales = np.array(errors), np.array(scales)
    worst = float(errors.max())
    rel = errors / np.where(scales > 0, scales, 1.0)
    return GradientRow(name=name, shape=tuple(x.shape), checked=count, max_abs_error=worst,
                       max_rel_error=float(rel.max()), ok=bool(np.all(errors <= atol + rtol * scales)),
                       kind="directions")


def _localize(loss, wrt, values, precision, rng):
    """Check each op node between ``wrt`` and ``loss`` alone, at its args' forward values.

    The forward values come from one compiled function of every arg of those
    nodes (the generated code, as everywhere).
    """
    graph = loss.graph
    path = [n for n in graph.order(_between(graph, [w.name for w in wrt], loss.name))
            if not OPS[graph.nx.nodes[n]["op"]].leaf]
    if not path:
        return ()
    on_path = set(path) | {w.name for w in wrt}
    # a node of several outputs (scan, split) is no array: its parts are what nodes read
    args = list(dict.fromkeys(a for n in path for a in graph.nx.nodes[n]["args"]
                              if not OPS[graph.nx.nodes[a]["op"]].several))
    f_forward = compile([graph[a] for a in args])
    forward = dict(zip(args, _call(f_forward, values), strict=True))
    return tuple(_check_node(graph[n], on_path, forward, precision, rng) for n in path)


def _check_node(node, on_path, forward, precision, rng):
    """The VJP rule of ``node`` against central differences of its op alone.

    A tiny graph holds the node's op with its params, an input per arg
    (shaped like the forward value) and a random cotangent ``seed``; the rule
    gives ``seed`` times the Jacobian (``grad`` with ``grad_output``, so no
    other op's rule takes part). Each float arg on the path is perturbed by
    ``eps^(1/3) * max(1, |x_i|)``, element by element up to ``NODE_ELEMENTS``
    elements, else along ``NODE_DIRECTIONS`` random directions, and
    ``sum(seed * y)`` is differenced. A direction fails when its error exceeds
    ``node_rtol`` times the size of the terms compared plus the rounding of
    ``sum(seed * y)``; a failure where the one-sided differences disagree as
    much as the error is a kink (relu at 0, a tie of max), not a wrong rule: it is counted in
    ``reason`` and does not fail the node.
    """
    op = OPS[node.op]
    formula = op.formula(*(a.name for a in node.args), **node.params)

    def skipped(reason):
        return NodeCheck(node.name, node.op, formula, 0, 0.0, None, reason)

    if np.dtype(node.dtype).kind != "f":
        return skipped(f"output is {node.dtype}: no derivative")
    if type(op).vjp is no_gradient:
        return skipped("the op declares no gradient")
    if any(OPS[a.op].several for a in node.args):
        return skipped("reads one output of a node of several outputs (checked with that node)")
    positions = [i for i, a in enumerate(node.args) if a.name in on_path]
    floats = [i for i in positions if np.dtype(node.args[i].dtype).kind == "f"]
    if not floats:
        return skipped("no float argument on the path")
    try:
        feeds, f_y, f_vjp = _alone(node, floats, forward)
    except GraphError as e:
        return skipped(f"cannot be rebuilt alone ({e})")
    y0 = np.asarray(_call(f_y, feeds), dtype=np.float64)
    feeds["seed"] = rng.standard_normal(y0.shape).astype(node.dtype)
    seed = feeds["seed"].astype(np.float64)
    cotangents = _call(f_vjp, feeds)
    finfo = np.finfo(node.dtype)
    noise = 8 * float(finfo.eps) * float(np.abs(seed * y0).sum())
    step = float(np.cbrt(finfo.eps))

    def f(name, value):
        return float((np.asarray(_call(f_y, {**feeds, name: value}), dtype=np.float64) * seed).sum())

    checked, worst, failed, kinks = 0, 0.0, [], 0
    for i, a in zip(floats, cotangents, strict=True):
        name = f"a{i}"
        x = feeds[name]
        kind = x.dtype
        flat64 = x.reshape(-1).astype(np.float64)
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), x.shape).reshape(-1)
        h = step * np.maximum(1.0, np.abs(flat64))
        if x.size <= NODE_ELEMENTS:
            moves = (np.eye(x.size)[k] * h for k in range(x.size))
        else:
            moves = (rng.standard_normal(x.size) * h for _ in range(NODE_DIRECTIONS))
        middle = f(name, x)
        for move in moves:
            up_x = (flat64 + move).astype(kind)
            down_x = (flat64 - move).astype(kind)
            up, down = f(name, up_x.reshape(x.shape)), f(name, down_x.reshape(x.shape))
            terms = a * (up_x.astype(np.float64) - down_x.astype(np.float64)) / 2
            numeric = (up - down) / 2
            err = abs(float(terms.sum()) - numeric)
            scale = float(np.abs(terms).sum()) + abs(numeric)
            checked += 1
            worst = max(worst, err / scale if scale else err)
            if err <= precision.node_rtol * scale + noise:
                continue
            # where the op is smooth the one-sided differences differ by a second-order term; across a
            # kink by twice the error of the central difference
            if abs((up - middle) - (middle - down)) >= err / 2:
                kinks += 1
            else:
                failed.append((node.args[i].name, err / scale))
    if failed:
        arg, rel = max(failed, key=lambda t: t[1])
        return NodeCheck(node.name, node.op, formula, checked, worst, False,
                         f"its VJP for {printable(arg)} disagrees with central differences "
                         f"(rel err {rel:.1e})")
    crossed = f"{kinks} of {checked} differences crossed a kink (not counted)" if kinks else ""
    return NodeCheck(node.name, node.op, formula, checked, worst, True, crossed)


def _call(f, values):
    """Run compiled ``f`` on the values it reads."""
    return f(**{k: values[k] for k in f.inputs})


def _alone(node, floats, forward):
    """``node`` alone in a graph of its own: its feeds, its compiled output and the compiled VJP
    of an input ``seed`` for the args at positions ``floats``."""
    tiny = Graph(f"{node.name} alone", node.dtype)
    args, feeds = [], {}
    for i, a in enumerate(node.args):
        value = forward[a.name]
        if a.weak:      # a Python scalar at run time: keep it one, so dtype promotion is unchanged
            args.append(tiny.apply("constant", (), {"value": np.asarray(value).item(), "dtype": a.dtype}))
            continue
        feeds[f"a{i}"] = np.array(value, dtype=a.dtype, copy=True, order="C")
        args.append(tiny.input(f"a{i}", np.shape(value), a.dtype))
    y = tiny.apply(node.op, tuple(args), node.params, "y")
    seed = tiny.input("seed", y.shape, y.dtype)
    vjp = grad(y, [args[i] for i in floats], grad_output=seed)
    return feeds, compile(y), compile(vjp)


def _in_dtype(loss, wrt, grads, dtype):
    """The same nodes in a copy of the graph whose float nodes are ``dtype``, unless they are already."""
    graph = loss.graph
    names = graph.order(graph.upstream([loss.name, *(g.name for g in grads), *(w.name for w in wrt)]))
    if all(not _is_float(graph.nx.nodes[n]["dtype"]) or graph.nx.nodes[n]["dtype"] == dtype for n in names):
        return loss, wrt, grads
    copy = Graph(f"{graph.name} ({dtype})", dtype, within=graph)
    for n in names:
        attrs = graph.nx.nodes[n]
        params = {k: _as_float(v, dtype) if k == "value" else (dtype if k == "dtype" and _is_float(v) else v)
                  for k, v in attrs["params"].items()}
        copy.apply(attrs["op"], tuple(copy[a] for a in attrs["args"]), params, n)
    return copy[loss.name], [copy[w.name] for w in wrt], [copy[g.name] for g in grads]


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


def _as_float(value, dtype):
    """Float arrays as ``dtype``; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(dtype)
    return value
