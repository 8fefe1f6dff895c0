"""Numeric gradient checks: generated gradients against central finite differences; imports graph, autodiff, codegen."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .autodiff import grad
from .codegen.compiled import compile
from .errors import FeedError, GradientError
from .graph import Graph, Tensor
from .op import OPS


@dataclass(frozen=True)
class GradientRow:
    """The check of one node's gradient."""

    name: str
    shape: tuple
    checked: int          # elements compared
    max_abs_error: float
    max_rel_error: float  # max |analytic - numeric| / max |numeric| (norm-wise, so tiny entries don't blow up)
    ok: bool


@dataclass(frozen=True)
class GradientReport:
    """Result of ``check_gradients``: one row per node; ``ok`` when every row passes."""

    loss: str
    rows: tuple
    eps: float
    rtol: float
    atol: float

    @property
    def ok(self):
        return all(r.ok for r in self.rows)

    def __getitem__(self, name):
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self):
        head = (f"gradient check of {self.loss!r}: central differences, eps={self.eps:g}, "
                f"pass if |err| <= {self.atol:g} + {self.rtol:g} * |numeric|")
        cols = f"{'node':<16} {'shape':<14} {'checked':>8} {'max abs err':>12} {'max rel err':>12}  result"
        lines = [head, cols, "-" * len(cols)]
        for r in self.rows:
            lines.append(f"{r.name:<16} {str(r.shape):<14} {r.checked:>8} {r.max_abs_error:>12.3e} "
                         f"{r.max_rel_error:>12.3e}  {'pass' if r.ok else 'FAIL'}")
        lines.append("all gradients match" if self.ok else "GRADIENT MISMATCH")
        return "\n".join(lines)


def check_gradients(loss: Tensor, wrt: Sequence[Tensor], feed: Mapping[str, ArrayLike], *, eps: float = 1e-6,
                    rtol: float = 1e-5, atol: float = 1e-8, max_checks: int | None = None, seed: int = 0,
                    gradients: Sequence[Tensor] | None = None) -> GradientReport:
    """Compare the generated gradients of ``loss`` against central finite differences.

    Both sides run generated code, in float64: a float32 (or float16) graph
    is checked through a float64 copy of the nodes involved, with the float
    values of ``feed`` converted, so the check is tight whatever the model's
    precision.

    Args:
        loss: scalar Tensor.
        wrt: list of float Tensors (params or inputs) to check.
        feed: dict node name -> array with every value ``loss`` needs.
        eps: finite-difference step.
        rtol, atol: element-wise pass rule ``|a - n| <= atol + rtol * |n|``.
        max_checks: check at most this many elements per node (chosen at
            random with ``seed``); None checks all.
        gradients: the gradient Tensors to test (default ``grad(loss, wrt)``);
            pass your own to test a hand-built gradient.

    Returns:
        GradientReport: ``print`` it for a table; ``.ok`` is the verdict.

    Raises:
        FeedError: a needed value is missing or malformed.
        GradientError: ``gradients`` does not match ``wrt``, or a ``wrt`` node
            is computed rather than fed.
    """
    wrt = list(wrt)
    for w in wrt:
        if isinstance(w, Tensor) and not OPS[w.op].leaf:
            raise GradientError(f"check_gradients: {w.name!r} is computed ({w.op}), not fed; central "
                                "differences perturb fed values, so check the params or inputs it comes from")
    grads = grad(loss, wrt) if gradients is None else list(gradients)
    if len(grads) != len(wrt):
        raise GradientError(f"check_gradients: {len(grads)} gradients for {len(wrt)} nodes")
    loss, wrt, grads = _in_float64(loss, wrt, grads)
    f_loss = compile(loss)
    f_grads = compile(grads)
    # C order, so that flat views below perturb the very arrays that are fed
    values = {k: _float64(np.array(v, copy=True, order="C")) for k, v in feed.items()}
    for name in (*f_loss.inputs, *f_grads.inputs, *(w.name for w in wrt)):
        if name not in values:
            raise FeedError(f"check_gradients: feed has no value for {name!r}")
    analytic = f_grads(**{k: values[k] for k in f_grads.inputs})
    fed = {k: values[k] for k in f_loss.inputs}
    rng = np.random.default_rng(seed)
    rows = []
    for w, a in zip(wrt, analytic):
        used = w.name in fed
        x = fed[w.name] if used else values[w.name]
        flat = x.reshape(-1)
        picks = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            picks = np.sort(rng.choice(flat.size, max_checks, replace=False))
        numeric = np.zeros(picks.size)      # a node the loss does not read has zero gradient
        for i, k in enumerate(picks if used else ()):
            saved = flat[k]
            flat[k] = saved + eps
            up = float(f_loss(**fed))
            flat[k] = saved - eps
            down = float(f_loss(**fed))
            flat[k] = saved
            numeric[i] = (up - down) / (2 * eps)
        got = np.broadcast_to(np.asarray(a, dtype=np.float64), x.shape).reshape(-1)[picks]
        err = np.abs(got - numeric)
        scale = np.max(np.abs(numeric), initial=0.0)
        rows.append(GradientRow(
            name=w.name, shape=tuple(x.shape), checked=int(picks.size),
            max_abs_error=float(np.max(err, initial=0.0)),
            max_rel_error=float(np.max(err, initial=0.0) / scale) if scale else float(np.max(err, initial=0.0)),
            ok=bool(np.all(err <= atol + rtol * np.abs(numeric)))))
    return GradientReport(loss.name, tuple(rows), eps, rtol, atol)


def _in_float64(loss, wrt, grads):
    """The same nodes in a float64 copy of the graph, unless they are float64 already."""
    graph = loss.graph
    names = graph.order(graph.upstream([loss.name, *(g.name for g in grads), *(w.name for w in wrt)]))
    if all(np.dtype(graph.nx.nodes[n]["dtype"]).kind != "f" or graph.nx.nodes[n]["dtype"] == "float64"
           for n in names):
        return loss, wrt, grads
    copy = Graph(f"{graph.name} (float64)", "float64")
    for n in names:
        attrs = graph.nx.nodes[n]
        params = {k: _float64(v) if k == "value" else ("float64" if k == "dtype" and _is_float(v) else v)
                  for k, v in attrs["params"].items()}
        copy.apply(attrs["op"], tuple(copy[a] for a in attrs["args"]), params, n)
    return copy[loss.name], [copy[w.name] for w in wrt], [copy[g.name] for g in grads]


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


def _float64(value):
    """Float arrays and numbers as float64; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    return value
