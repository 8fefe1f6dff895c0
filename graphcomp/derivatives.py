"""Forward mode and higher derivatives (jvp, jacobian, hessian, hvp) as graph nodes; imports graph, op, ops, autodiff.

``jvp`` transposes the linear VJP graph: the VJP of y seeded with a stand-in
cotangent u is linear in u, so the gradient of ``sum(vjp * t)`` with respect
to u is ``J t``. Reverse mode applied to the reverse pass gives the forward
pass of tangents (no per-op JVP rules), and everything already built for the
chain rule (un-broadcasting, fused rules, pruning) serves both.

``jacobian`` and ``hessian`` loop over rows: a ``map`` node runs a body
subgraph (one VJP, seeded with the i-th unit cotangent) once per row of the
result; codegen writes the body once as a function, never one copy per row.
What the body reads that does not depend on the row (the forward pass, the
first derivative for a Hessian) is computed once, outside the loop.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .autodiff import grad, reverse
from .codegen.ir import Loop
from .collector import pausing
from .errors import GradientError, GraphError, OpError, ShapeError
from .graph import F, Graph, Tensor, TensorLike
from .op import OPS, Body, Op, register
from .shapes import dims_compatible, format_shape, is_free, is_int


@pausing
def jvp(y: Tensor, primals: Tensor | Sequence[Tensor], tangents: TensorLike | Sequence[TensorLike]) -> Tensor:
    """Forward mode: the derivative of ``y`` along ``tangents``, ``sum_k dy/dx_k . t_k``, as graph nodes.

    Costs about one forward pass of the tangents through the part of the
    graph between the primals and ``y``.

    Args:
        y: a float Tensor of any shape.
        primals: a Tensor or a list of float Tensors of y's graph.
        tangents: one per primal: a Tensor, array or number of the primal's
            shape (a number or shape () broadcasts).

    Returns:
        A Tensor shaped like ``y`` named ``t_<y>``.

    Raises:
        ShapeError: a tangent's shape is not its primal's.
        GraphError: a tangent belongs to another graph, or the counts differ.

    Example:
        >>> t = jvp(logits, [W, b], [tW, tb])
    """
    single = isinstance(primals, Tensor)
    primals, tangents = ([primals], [tangents]) if single else (list(primals), list(tangents))
    graph = _check_y(y, "jvp")
    if len(primals) != len(tangents):
        raise GraphError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    tangents = [_direction(graph, p, t, "jvp", "tangent") for p, t in zip(primals, tangents, strict=True)]
    _check_float(y, "jvp", "differentiate")
    first = graph._count
    stand_in = F.zeros_like(y, name=graph.unique_name(f"ct_{y.name}"))
    cts = reverse(y, primals, seed=stand_in, prefix="ct_")
    dot = None
    for ct, t in zip(cts, tangents, strict=True):
        term = F.sum(ct * t)
        dot = term if dot is None else dot + term
    second = graph._count
    result = reverse(dot, [stand_in], prefix=lambda n: "t_" + n.removeprefix("ct_"))[0]
    _prune(graph, first, result)
    # the reverse pass over the VJP graph is a forward pass of tangents: say so in the comments
    along = ", ".join(p.name for p in primals)
    for n in graph.upstream([result.name]):
        attrs = graph.nx.nodes[n]
        if attrs["index"] >= second:
            node = n.removeprefix("t_") if n.startswith("t_") and not attrs["temp"] else None
            attrs["note"] = f"forward mode: d{node}/d({along}) . tangents" if node else "forward mode"
    return result


@pausing
def hvp(loss: Tensor, w: Tensor, v: TensorLike) -> Tensor:
    """The Hessian of scalar ``loss`` for ``w`` times ``v``, shaped like ``w`` (reverse over reverse).

    Args:
        loss: a scalar float Tensor.
        w: a float Tensor of loss's graph.
        v: a Tensor, array or number shaped like ``w``.

    Raises:
        GradientError: ``loss`` is not a scalar.
        ShapeError: ``v`` is not shaped like ``w``.
    """
    graph = _check_y(loss, "hvp")
    _check_scalar(loss, "hvp")
    v = _direction(graph, w, v, "hvp", "direction")
    return reverse(F.sum(grad(loss, w) * v), [w], prefix="hv_")[0]


@pausing
def hessian(loss: Tensor, w: Tensor) -> Tensor:
    """The Hessian of scalar ``loss`` for ``w``: shape ``w.shape + w.shape``; ``w`` has static dims.

    One row per element of ``w``, each a Hessian-vector product, computed in a
    loop; the gradient it differentiates is computed once.

    Raises:
        GradientError: ``loss`` is not a scalar, or ``w`` has a free dim.
    """
    _check_y(loss, "hessian")
    _check_scalar(loss, "hessian")
    _check_static(w, "hessian")
    return jacobian(grad(loss, w), w)


@pausing
def jacobian(y: Tensor, x: Tensor) -> Tensor:
    """The Jacobian of ``y`` for ``x``: shape ``y.shape + x.shape``; both have static dims.

    Row i (of y flattened) is the VJP of the i-th unit cotangent, computed
    in a loop over the rows by a body subgraph; the forward values the rows
    need are computed once.

    Raises:
        GradientError: ``y`` or ``x`` has a free dim, or is not a float.
        GraphError: ``x`` belongs to another graph.
    """
    graph = _check_y(y, "jacobian")
    if not isinstance(x, Tensor) or x.graph is not graph:
        raise GraphError(f"jacobian: {x!r} is not a node of graph {graph.name!r}")
    for t in (y, x):
        _check_static(t, "jacobian")
        _check_float(t, "jacobian", "differentiate")
    n = math.prod(y.shape)
    if x.name not in graph.upstream([y.name]):
        return graph.constant(np.zeros(y.shape + x.shape, y.dtype))
    body = Graph(f"{graph.name}: rows of d{y.name}/d{x.name}", graph.dtype, within=graph)
    bound = _copy(body, graph, graph.upstream([y.name]), keep_names=True)
    index = body.input(body.unique_name("i"), (), "int64")
    seed = body.apply("unit", (index,), {"shape": y.shape, "dtype": y.dtype})
    row = reverse(bound[y.name], [bound[x.name]], seed=seed)[0]
    outside = {name: graph[name] for name in bound}
    rows = _loop(graph, body, index, row, outside, n, "stack",
                 f"Row i of the Jacobian of {y.name!r} for {x.name!r}: the VJP of the i-th unit cotangent.")
    return F.reshape(rows, y.shape + x.shape)


@register
class Map(Op):
    """y[i] = body(i, *args) for i < count, stacked on a new first axis (or their sum: reduce="sum").

    The VJP for each float arg is a sum over i of the body's VJP, a map of
    its own: maps differentiate again.
    """
    name = "map"
    public = False

    def normalize(self, *args, body, count, reduce):
        # NOTE: jacobian builds it; a graph file may hold any params, so they are checked
        if not isinstance(body, Body) or len(body.inputs) != len(args) + 1 or not isinstance(body.output, str):
            raise OpError(f"body must be a loop body of the index and {len(args)} args and one output, got {body!r}")
        if not is_int(count) or count < (1 if reduce == "sum" else 0):   # (the code of an empty sum is a 0, no array)
            raise OpError(f"count must be an int >= 0 (>= 1 to sum), got {count!r}")
        if reduce not in ("stack", "sum"):
            raise OpError(f"reduce must be 'stack' or 'sum', got {reduce!r}")
        return {"body": body, "count": count, "reduce": reduce}

    def infer(self, *args, body, count, reduce):
        out = body.graph[body.output]
        return ((count,) + out.shape if reduce == "stack" else out.shape), out.dtype

    def emit(self, *args, body, count, reduce):
        return Loop(body, count, args, reduce)

    def formula(self, *args, body, count, reduce):
        return f"{reduce}(body(i, {', '.join(args)}) for i < {count})"

    def vjp(self, ct, y, *args, body, count, reduce):
        return tuple(_map_vjp(ct, args, k, body, count, reduce)
                     if np.dtype(a.dtype).kind == "f" else None for k, a in enumerate(args))


def _map_vjp(ct, args, k, body, count, reduce):
    """The cotangent of arg k of a map: sum over i of the VJP of body i for its k-th input."""
    graph = ct.graph
    inner = Graph(f"{body.graph.name}: VJP for {body.inputs[k + 1]}", body.graph.dtype, within=body.graph)
    bound = _copy(inner, body.graph, body.graph.upstream([body.output]) | set(body.inputs), keep_names=True)
    ct_in = inner.input(inner.unique_name("ct"), ct.shape, ct.dtype)
    index = bound[body.inputs[0]]
    seed = F.row(ct_in, index) if reduce == "stack" else ct_in
    g = reverse(bound[body.output], [bound[body.inputs[k + 1]]], seed=seed)[0]
    outside = dict(zip(body.inputs[1:], args, strict=True)) | {ct_in.name: ct}
    return _loop(graph, inner, index, g, outside, count, "sum",
                 f"Term i of the VJP of a map for its input {body.inputs[k + 1]!r}.")


def _loop(graph, body, index, out, outside, count, reduce, doc):
    """A map node of ``graph`` running the part of ``body`` that depends on ``index``.

    The rest of what computing ``out`` reads is loop-invariant: it is computed
    once in ``graph`` (``outside`` gives the Tensors of graph that body nodes
    stand for; other invariant nodes are copied there) and passed in.
    """
    moving = {index.name}
    for n in body.order(body.upstream([out.name])):
        if any(a in moving for a in body.nx.nodes[n]["args"]):
            moving.add(n)
    if out.name not in moving:       # no row depends on the index: every one is this value
        value = _copy(graph, body, body.upstream([out.name]), bound=dict(outside))[out.name]
        if reduce == "sum":
            return value * count
        return F.expand_dims(value, 0) * graph.constant(np.ones((count,) + (1,) * value.ndim, value.dtype))
    # constants (nodes of no args that are not fed) go with the nodes that read them, not passed in
    moving |= {a for n in moving for a in body.nx.nodes[n]["args"]
               if not body.nx.nodes[a]["args"] and not OPS[body.nx.nodes[a]["op"]].leaf}
    frontier = body.order({a for n in moving for a in body.nx.nodes[n]["args"] if a not in moving})
    passed = _copy(graph, body, body.upstream(frontier), bound=dict(outside))
    loop = Graph(body.name, body.dtype, within=body)
    inputs = [loop.input(index.name, (), index.dtype)]
    for f in frontier:
        attrs = body.nx.nodes[f]
        inputs.append(loop.apply("input", (), {"shape": attrs["shape"], "dtype": attrs["dtype"]}, f))
    done = _copy(loop, body, moving - {index.name}, bound={t.name: t for t in inputs}, keep_names=True)
    spec = Body(loop, tuple(t.name for t in inputs), done[out.name].name, doc)
    return graph.apply("map", tuple(passed[f] for f in frontier), {"body": spec, "count": count, "reduce": reduce})


def _copy(dst, src, names, bound=None, keep_names=False):
    """Rebuild the nodes ``names`` of graph ``src`` in ``dst``; returns {src name: dst Tensor}.

    ``bound`` gives dst Tensors for some src nodes already (they are not
    rebuilt). Leaves become inputs of dst unless bound.
    """
    bound = {} if bound is None else bound
    for n in src.order(names):
        if n in bound:
            continue
        attrs = src.nx.nodes[n]
        name = n if keep_names else None
        if OPS[attrs["op"]].leaf:
            if not keep_names:
                raise GraphError(f"no value for {attrs['op']} {n!r} outside its loop body")
            bound[n] = dst.apply("input", (), {"shape": attrs["shape"], "dtype": attrs["dtype"]}, name)
        else:
            bound[n] = dst.apply(attrs["op"], tuple(bound[a] for a in attrs["args"]), attrs["params"], name)
    return bound


def _prune(graph, first, result):
    """Drop the nodes added since ``first`` that ``result`` does not need (the unused VJP parts)."""
    keep = graph.upstream([result.name])
    graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first and n not in keep])


def _check_y(y, what):
    if not isinstance(y, Tensor):
        raise GraphError(f"{what}: expected a graphcomp Tensor, got {type(y).__name__} {y!r}")
    return y.graph


def _check_float(t, what, verb):
    if np.dtype(t.dtype).kind != "f":
        raise GradientError(f"{what}: cannot {verb} {t.name!r} ({t.op}, dtype {t.dtype}): only float "
                            "nodes have derivatives")


def _check_scalar(loss, what):
    if loss.shape != ():
        raise GradientError(f"{what}: {loss.name!r} has shape {format_shape(loss.shape)}; a Hessian is "
                            "of a scalar (use jacobian of a gradient, or jvp, for other outputs)")


def _check_static(t, what):
    if any(map(is_free, t.shape)):
        raise GradientError(f"{what}: {t.name!r} has shape {format_shape(t.shape)} with a free dim; "
                            f"{what} needs static dims (its size is the number of rows of the loop)")


def _direction(graph, primal, t, what, kind):
    """A tangent or direction for ``primal``: lifted to a Tensor and checked against its shape."""
    if not isinstance(primal, Tensor) or primal.graph is not graph:
        raise GraphError(f"{what}: {primal!r} is not a node of graph {graph.name!r}")
    _check_float(primal, what, "differentiate for")
    if isinstance(t, Tensor) and t.graph is not graph:
        raise GraphError(f"{what}: {kind} {t.name!r} of {primal.name!r} belongs to graph "
                         f"{t.graph.name!r}, not {graph.name!r}")
    t = graph.lift(t)
    fits = t.shape == () or (len(t.shape) == primal.ndim and all(map(dims_compatible, t.shape, primal.shape)))
    if not fits:
        raise ShapeError(f"{what}: {kind} {t.name!r} has shape {format_shape(t.shape)}, expected "
                         f"{format_shape(primal.shape)} like {primal.name!r}")
    return t
