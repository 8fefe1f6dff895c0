"""Reverse-mode differentiation: ``grad`` adds gradient nodes built from ordinary ops; imports graph, op, ops,
shapes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import ops  # noqa: F401 - registers the ops that VJPs build
from .collector import pausing
from .errors import GradientError, GraphError, ShapeError
from .graph import F, Tensor, TensorLike
from .op import OPS
from .shapes import format_shape, sum_to_axes


@pausing
def grad(y: Tensor, wrt: Tensor | Sequence[Tensor], grad_output: TensorLike | None = None) -> Tensor | list[Tensor]:
    """Gradients of ``y`` with respect to each node of ``wrt``, as new graph nodes.

    The chain rule runs backwards from ``y`` over the nodes between ``wrt``
    and ``y``: each op's VJP builds its inputs' cotangents from ordinary ops,
    broadcast arguments are summed back to their shapes, and cotangents of a
    node used several times are added up. The result is part of the graph, so
    it can be compiled, printed and differentiated again.

    Args:
        y: the Tensor to differentiate; a scalar unless ``grad_output`` is given.
        wrt: a Tensor or a list of Tensors (float nodes of y's graph).
        grad_output: the cotangent of ``y`` (same shape) for a non-scalar ``y``;
            a vector-Jacobian product is returned.

    Returns:
        A Tensor (or a list, if ``wrt`` is a list) named ``d_<node>``: the
        gradient, shaped like its node; zeros if ``y`` does not depend on it.

    Raises:
        GradientError: ``y`` is not a scalar and no ``grad_output`` is given, or
            a ``wrt`` node is not a float.
        GraphError: a node belongs to another graph.

    Example:
        >>> dW, db = grad(loss, [W, b])
    """
    if not isinstance(y, Tensor):
        raise GraphError(f"grad: y must be a graphcomp Tensor, got {type(y).__name__} {y!r}")
    single = isinstance(wrt, Tensor)
    wrt = [wrt] if single else list(wrt)
    for w in wrt:
        if not isinstance(w, Tensor) or w.graph is not y.graph:
            raise GraphError(f"grad: {w!r} is not a node of graph {y.graph.name!r}")
        if np.dtype(w.dtype).kind != "f":
            raise GradientError(f"grad: cannot differentiate with respect to {w.name!r} "
                                f"({w.op}, dtype {w.dtype}): only float nodes have gradients")
    results = reverse(y, wrt, _seed(y, grad_output) if grad_output is not None else None)
    return results[0] if single else results


def reverse(y, wrt, seed=None, prefix="d_"):
    """The chain rule from ``y`` back to the ``wrt`` Tensors, seeded with ``seed`` (default 1).

    The total cotangent of each node is named ``<prefix><node>`` (``prefix``
    may instead be a function of the node's name giving the total's name).
    Results for the same ``y``, seed node and prefix are built once and reused.
    """
    graph = y.graph
    key = (y.id, None if seed is None else seed.id, prefix)
    cached = graph._grads.get(key, {})
    if all(cached.get(w.id) in graph._names for w in wrt):
        return [Tensor(graph, cached[w.id]) for w in wrt]
    first_new = graph._count
    if seed is None:
        seed = _seed(y, None)
        term = f"d{y.name}/d{{}}"
    else:
        term = f"{seed.name} * d{y.name}/d{{}}"
    on_path = _between(graph, [w.name for w in wrt], y.name)
    cts = {y.name: [seed]}
    done = {}          # node name -> its total cotangent
    totals = set()     # ids of those totals
    for name in reversed(graph.order(on_path)):
        parts = cts.pop(name, None)
        if parts is None:
            continue
        node = graph[name]
        if OPS[node.op].several:
            done[name] = ct = _slots(graph, node, parts, term.format(name))
        else:
            done[name] = ct = _total(graph, node, parts, term.format(name), prefix, first_new, totals)
            totals.add(ct.id)
        args = node.args
        if not args:
            continue
        op = OPS[node.op]
        if op.vjp is None:
            raise GradientError(f"cannot differentiate node {name!r}: op {node.op!r} has no vjp rule "
                                "(an op without a gradient must say so with vjp = no_gradient)")
        with graph.noting(f"VJP of {name} = {op.formula(*node._attrs['args'], **node.params)}"):
            in_cts = op.vjp(ct, node, *args, **node.params)
            if len(in_cts) != len(args):
                raise GraphError(f"op {node.op!r}: vjp gave {len(in_cts)} cotangents for {len(args)} args")
            for arg, g in zip(args, in_cts, strict=True):
                if g is not None and arg.name in on_path:
                    cts.setdefault(arg.name, []).append(g if OPS[arg.op].several else sum_to(g, arg))
    results = [done[w.name] if w.name in done else F.zeros_like(w, name=graph.unique_name(_label(prefix, w.name)))
               for w in wrt]
    _prune(graph, first_new, results)
    graph._grads.setdefault(key, {}).update({w.id: r.id for w, r in zip(wrt, results)})
    return results


def _seed(y, grad_output):
    """The cotangent of ``y``: 1 for a scalar, else ``grad_output`` checked against ``y``'s shape."""
    if grad_output is None:
        if y.shape != ():
            raise GradientError(f"grad: {y.name!r} has shape {format_shape(y.shape)}; give "
                                "grad_output (its cotangent) to differentiate a non-scalar")
        return y.graph.constant(1.0, y.dtype)
    ct = y.graph.lift(grad_output)
    if ct.shape != y.shape:
        raise ShapeError(f"grad: grad_output {ct.name!r} has shape {format_shape(ct.shape)}, "
                         f"expected {format_shape(y.shape)} like {y.name!r}")
    return ct


def _between(graph, sources, target):
    """Names of nodes on some path from a source to ``target`` (inclusive)."""
    sources = set(sources)
    found = set()
    for n in graph.order(graph.upstream([target])):
        if n in sources or any(a in found for a in graph.nx.nodes[n]["args"]):
            found.add(n)
    return found


def _total(graph, node, parts, note, prefix, first_new, totals):
    """Add up the cotangent contributions of ``node`` into one node named ``<prefix><node>``.

    The sum (or a single contribution) is renamed so, if this call just built
    it and it is no other node's total; otherwise it is used as it is.
    """
    ct = parts[0]
    if len(parts) > 1:
        with graph.noting(f"{note}: sum over its {len(parts)} uses"):
            for p in parts[1:]:
                ct = F.add(ct, p)
    attrs = ct._attrs
    if ct.id < first_new or OPS[attrs["op"]].inline or ct.id in totals:
        return ct
    ct = graph.rename(ct.name, graph.unique_name(_label(prefix, node.name)))
    ct._attrs["note"] = attrs["note"] if len(parts) > 1 else f"{note}: {attrs['note']}"
    ct._attrs["total_of"] = node.id
    return ct


def _slots(graph, node, parts, note):
    """The cotangent of a node with several outputs: one total per output (None where none reaches).

    Each contribution is a dict ``{output index: Tensor}`` (what the VJP of a ``part`` gives).
    """
    slots = [[] for _ in node.outputs]
    for part in parts:
        for k, g in part.items():
            slots[k].append(g)
    totals = []
    with graph.noting(f"{note}: sum over its uses"):
        for found in slots:
            total = found[0] if found else None
            for g in found[1:]:
                total = F.add(total, g)
            totals.append(total)
    return tuple(totals)


def _label(prefix, name):
    return prefix(name) if callable(prefix) else f"{prefix}{name}"


def sum_to(g, x):
    """Un-broadcast cotangent ``g`` to the shape of ``x`` (sum the broadcast axes)."""
    if g.shape == x.shape:
        return g
    lead, keep = sum_to_axes(g.shape, x.shape)
    if lead:
        g = F.sum(g, lead)
    if keep:
        g = F.sum(g, keep, keepdims=True)
    return g


def _prune(graph, first_new, results):
    """Drop nodes this call added that no result needs (VJP parts of non-wrt args)."""
    keep = graph.upstream([r.name for r in results])
    graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first_new and n not in keep])
