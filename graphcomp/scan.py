"""scan: a loop over time steps with carried state, one node with a body subgraph; imports graph, ops,
autodiff, codegen.ir.

``scan(body, init, xs)`` traces ``body`` once. It runs on stand-in inputs
in the caller's graph, so the Tensors it closes over (weights) just work;
the nodes that depend on the stand-ins move into a body Graph, and what
does not (a transposed weight) stays outside, computed once, and is passed
in. The node's outputs are the last carry, the stacked per-step outputs and
the carry entering each step (the history back-propagation reads).

Its VJP is back-propagation through time as another scan, over the steps
in reverse, applying the step's VJP (built by the chain-rule pass on the
body). The body also outputs every value it computes from the carry or x_t,
and the forward loop stacks those the backward step reads (what JAX's scan
keeps by default): the backward step recomputes nothing. A forward pass
compiled alone stacks none of them. Recomputing them in the backward step
from the saved carry instead (keeping only the carries, or only the
matmuls) was measured 8 to 20% slower on the LSTM benchmark once the stacks
were allocated once per call.

The gradient of a loop-invariant value (a weight) that the body reads only
through ops mapping a leading axis (matmul, element-wise) is not added up
step by step: the reversed loop stacks what that needs (each reader's
cotangent), and the reader's own VJP runs once after the loop on the values
stacked over the steps, so an RNN's W_hh gradient is one matmul over all
steps and batch rows instead of one small matmul per step. The reversed
scan is a scan like any other, so it differentiates again.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np

from . import autodiff
from .codegen.ir import Scan as ScanLoop
from .collector import pausing
from .errors import DTypeError, GraphError, OpError, ShapeError
from .graph import F, Graph, Tensor
from .op import OPS, Body, Op, register
from .ops.structure import parts
from .shapes import dims_compatible, format_shape, is_int


@register
class Scan(Op):
    """(carry, ys, history) = scan of ``body`` over the leading axis of the xs args.

    Args are the initial carries, the sequences, then the loop-invariant
    values the body reads. The VJP is a scan in the other direction.
    """
    name = "scan"
    public = False
    several = True

    def normalize(self, *args, body, carries, xs, reverse, history):
        # NOTE: gc.scan and its VJP build these; a graph file may hold any params, so they are checked
        if not (is_int(carries) and is_int(xs) and carries >= 0 and xs >= 1 and carries + xs <= len(args)):
            raise OpError(f"carries and xs must be ints (>= 0, >= 1) counting the first of the {len(args)} args, "
                          f"got {carries!r} and {xs!r}")
        if not isinstance(body, Body) or len(body.inputs) != len(args) or not isinstance(body.output, tuple) \
                or len(body.output) < carries:
            raise OpError(f"body must be a loop body of the {len(args)} args returning at least the {carries} "
                          f"carries, got {body!r}")
        if not isinstance(reverse, bool) or not isinstance(history, bool):
            raise OpError(f"reverse and history must be True or False, got {reverse!r} and {history!r}")
        return {"body": body, "carries": carries, "xs": xs, "reverse": reverse, "history": history}

    def infer(self, *args, body, carries, xs, reverse, history):
        init, seqs = args[:carries], args[carries:carries + xs]
        length = seqs[0].shape[0]
        for s in seqs[1:]:
            if not dims_compatible(s.shape[0], length):
                raise ShapeError(f"sequences {seqs[0].name!r} and {s.name!r} differ in length "
                                 f"({length!r} != {s.shape[0]!r})")
        ys = [body.graph[o] for o in body.output[carries:]]
        return ((*((c.shape, c.dtype) for c in init), *(((length,) + y.shape, y.dtype) for y in ys),
                 *((((length,) + c.shape, c.dtype) for c in init) if history else ())))

    def emit(self, *args, body, carries, xs, reverse, history):
        return ScanLoop(body, args, carries, xs, reverse, history)

    def bounds(self, *args, body, carries, xs, reverse, history):
        """The ranges the body's ops need their inputs in, passed on to the sequences (every row) and
        loop-invariant values they come from: token ids fed to a ``take`` in the body are checked too."""
        step = body.graph
        position = {name: k for k, name in enumerate(body.inputs)}
        found = {}
        for n in step.order(step.nx):
            attrs = step.nx.nodes[n]
            op = OPS[attrs["op"]]
            if type(op).bounds is Op.bounds:
                continue
            for pos, bound in op.bounds(*(step[a] for a in attrs["args"]), **attrs["params"]).items():
                k = position.get(attrs["args"][pos], -1)
                if k >= carries:        # a carry changes from step to step: only its init is fed
                    found[k] = bound
        return found

    def formula(self, *args, body, carries, xs, reverse, history):
        init, seqs, consts = args[:carries], args[carries:carries + xs], args[carries + xs:]
        shown = f"scan({body.graph.name}, init=({', '.join(init)}), xs=({', '.join(seqs)})"
        return shown + (f", reading {', '.join(consts)}" if consts else "") + (", reversed)" if reverse else ")")

    def vjp(self, ct, y, *args, body, carries, xs, reverse, history):
        return _scan_vjp(ct, y, args, body, carries, xs, reverse, history)


@pausing
def scan(body: Callable, init: Tensor | Sequence[Tensor], xs: Tensor | Sequence[Tensor], *, reverse: bool = False,
         name: str | None = None):
    """Loop ``body`` over the leading axis of ``xs``, carrying state, like ``jax.lax.scan``.

    ``body(carry, x_t)`` returns ``(new_carry, y_t)``; it is called once, on
    stand-in Tensors, to build a body subgraph. The generated code is a
    Python loop over the time steps, each running the body's vectorized
    NumPy on the whole batch; its gradient is back-propagation through time
    as the reversed loop.

    Args:
        body: a function of (carry, x_t) returning (new_carry, y_t). carry and
            new_carry have init's structure (a Tensor or a list of Tensors) and
            shapes; x_t is a Tensor (or a list, like xs) of one step; y_t is a
            Tensor, a list of Tensors, or None. It may read any Tensor of the
            graph (weights): those are passed to the loop, not copied.
        init: the initial carry: a Tensor or a list of Tensors.
        xs: a Tensor or a list of Tensors scanned over axis 0 (same length).
        reverse: scan from the last step to the first (ys stay in step order).
        name: the name of the scan node.

    Returns:
        ``(carry, ys)``: the final carry (init's structure) and the per-step
        outputs stacked on a new leading axis (y_t's structure).

    Raises:
        ShapeError: a new carry's shape is not its init's, or xs have no axis.
        DTypeError: a new carry's dtype is not its init's.
        GraphError: body does not return a pair, or init and xs are of other graphs.

    Example:
        >>> def step(h, x):
        ...     h = gc.tanh(x @ W_ih.T + h @ W_hh.T + b)
        ...     return h, h
        >>> h_last, hs = gc.scan(step, h0, xs)
    """
    init_list, carry_single = _as_list(init, "init")
    xs_list, xs_single = _as_list(xs, "xs")
    if not xs_list:
        raise GraphError("scan: xs is empty; scan needs a sequence to loop over")
    graph = xs_list[0].graph
    for t in init_list + xs_list:
        if t.graph is not graph:
            raise GraphError(f"scan: {t.name!r} belongs to graph {t.graph.name!r}, not {graph.name!r}")
    for x in xs_list:
        if x.ndim == 0:
            raise ShapeError(f"scan: {x.name!r} is a scalar; xs are scanned over their leading axis")
    carry_name, x_name = _param_names(body)
    first = graph._count
    try:
        labels = ([_label(carry_name, k, carry_single) for k in range(len(init_list))]
                  + [_label(x_name, k, xs_single) for k in range(len(xs_list))])
        carry_in = [_input(graph, label, c.shape, c.dtype) for label, c in zip(labels, init_list)]
        x_in = [_input(graph, label, x.shape[1:], x.dtype) for label, x in zip(labels[len(init_list):], xs_list)]
        result = body(carry_in[0] if carry_single else list(carry_in), x_in[0] if xs_single else list(x_in))
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise GraphError(f"scan: body must return (new_carry, y), got {result!r}")
        new_carry, _ = _as_list(result[0], "the new carry of body", graph)
        ys, ys_single = ([], True) if result[1] is None else _as_list(result[1], "the y of body", graph)
        _check_carries(init_list, new_carry)
        spec, consts = _extract(graph, first, carry_in + x_in, labels, new_carry + ys,
                                f"{graph.name}: {getattr(body, '__name__', 'body')}",
                                f"One step of {getattr(body, '__qualname__', 'body')!r}: (carry, x_t) -> "
                                "(new carry, y_t).")
        spec = _keeping_values(spec, len(init_list) + len(xs_list))
        node = graph.apply("scan", (*init_list, *xs_list, *consts),
                           {"body": spec, "carries": len(init_list), "xs": len(xs_list), "reverse": bool(reverse),
                            "history": True}, name)
    except BaseException:      # a call that raises adds no node: not the stand-ins, nor what was hoisted
        graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first])
        raise
    outs = parts(node)
    carry_out, ys_out = outs[:len(init_list)], outs[len(init_list):len(init_list) + len(ys)]
    carry_result = carry_out[0] if carry_single else carry_out
    ys_result = None if result[1] is None else ys_out[0] if ys_single else ys_out
    return carry_result, ys_result


def _keeping_values(body, varying_inputs):
    """``body`` with the values it computes from the carry or x_t as extra outputs after its own, so the
    loop can stack those that back-propagation reads (it stacks only what is read)."""
    step = body.graph
    live = step.upstream(list(body.output))
    kept = [n for n in step.order(_varying(step, body.inputs[:varying_inputs]) & live)
            if _worth_saving(step[n]) and n not in body.output]
    return Body(step, body.inputs, body.output + tuple(kept), body.doc) if kept else body


def _worth_saving(t):
    """Whether reading a step's value from the loop's stacked outputs beats recomputing it: it is computed,
    not a free view or a tuple."""
    op = OPS[t.op]
    return bool(t.args) and not (op.leaf or op.inline or op.several)


def _as_list(value, what, graph=None):
    """``(list of Tensors, whether value was a single Tensor)``; numbers become constants of ``graph``."""
    if isinstance(value, Tensor):
        return [value], True
    if isinstance(value, (list, tuple)):
        items = [graph.lift(v) if graph is not None else v for v in value]
        if all(isinstance(v, Tensor) for v in items):
            return items, False
    raise GraphError(f"scan: {what} must be a Tensor or a list of Tensors, got {value!r}")


def _param_names(body):
    """What the body calls its two inputs, for the names in generated code (``carry`` and ``x`` if unknown)."""
    try:
        names = [p.name for p in inspect.signature(body).parameters.values()]
    except (TypeError, ValueError):
        names = []
    return (names + ["carry", "x"])[:2] if len(names) >= 2 else ("carry", "x")


def _label(base, k, single):
    return base if single else f"{base}{k}"


def _check_carries(init, new):
    if len(new) != len(init):
        raise GraphError(f"scan: body returned {len(new)} carries for {len(init)} in init")
    for c, n in zip(init, new, strict=True):
        if n.ndim != c.ndim or not all(map(dims_compatible, n.shape, c.shape)):
            raise ShapeError(f"scan: the new carry {n.name!r} has shape {format_shape(n.shape)}, but its init "
                             f"{c.name!r} has {format_shape(c.shape)}")
        if n.dtype != c.dtype:
            raise DTypeError(f"scan: the new carry {n.name!r} is {n.dtype}, but its init {c.name!r} is {c.dtype}")


def _extract(graph, first, inputs, labels, outputs, title, doc, substitute=None):
    """Move what the nodes added to ``graph`` since ``first`` compute from the stand-in ``inputs`` into a body.

    Returns ``(Body, consts)``: the body's inputs are the stand-ins (named
    ``labels`` there), then the
    Tensors of ``graph`` it reads (``consts``: weights, and the values built
    during tracing that do not depend on the stand-ins, computed once outside
    the loop). Its outputs are ``outputs``. The moved nodes leave ``graph``.
    ``substitute`` maps nodes to stand-ins whose values the body reads instead
    (a forward value the loop saved rather than recomputes).
    """
    nodes = graph.nx.nodes
    moving = _reached(graph, [t.name for t in inputs], (n for n, i in nodes(data="index") if i >= first))
    # constants and free views (inline ops: W.T) go with the nodes that read them, rather than being passed in
    frontier = list(moving)
    while frontier:
        found = {a for n in frontier for a in nodes[n]["args"]
                 if a not in moving and OPS[nodes[a]["op"]].inline and not OPS[nodes[a]["op"]].leaf}
        moving |= found
        frontier = list(found)
    names = [o.name for o in outputs]
    consts = graph.order({a for n in moving for a in nodes[n]["args"] if a not in moving}
                         | {n for n in names if n not in moving})
    sub = Graph(title, graph.dtype, within=graph)
    bound = {}
    for n, label in zip([t.name for t in inputs] + consts, list(labels) + consts, strict=True):
        bound[n] = _input(sub, label, nodes[n]["shape"], nodes[n]["dtype"])
    for n, stand_in in (substitute or {}).items():
        bound[n] = bound[stand_in]
    for n in graph.order(moving - set(bound)):
        attrs = nodes[n]
        bound[n] = sub.apply(attrs["op"], tuple(bound[a] for a in attrs["args"]), attrs["params"],
                             sub.unique_name(n) if not attrs["temp"] else None)
        sub.nx.nodes[bound[n].name]["note"] = attrs["note"]
    spec = Body(sub, tuple(bound[n].name for n in [t.name for t in inputs] + consts),
                tuple(bound[n].name for n in names), doc)
    graph.remove([n for n in moving if nodes[n]["index"] >= first])
    return spec, [graph[c] for c in consts]


def _scan_vjp(ct, y, args, body, carries, xs, reverse, history):
    """Back-propagation through time: a scan over the steps in the other direction.

    Its carries are the cotangents of the float carries and the running sums
    of the cotangents of the consts not summed after the loop (see
    ``_summed_after``); each step applies the body's VJP to the forward values
    the loop stacked (``_read_back``), replaying from the saved carry and x_t
    only what it did not stack. Integer and bool carries, xs and consts get no
    gradient (their values still drive the replayed steps).
    """
    graph = y.graph
    init, seqs, consts = args[:carries], args[carries:carries + xs], args[carries + xs:]
    n_ys = len(body.output) - carries
    step = body.graph
    names = body.inputs

    def is_float(node):
        return np.dtype(step.nx.nodes[node]["dtype"]).kind == "f"
    ct_carry, ct_ys = ct[:carries], ct[carries:carries + n_ys]
    ct_hist = ct[carries + n_ys:] if history else (None,) * carries
    fc = [k for k in range(carries) if is_float(names[k])]
    varying = _varying(step, names[:carries + xs])
    # consts whose gradient is summed over all steps after the loop (-> the readers of each), or in the loop
    hoisted = {k: found for k, found in _summed_after(body, carries + xs, varying).items()
               if is_float(names[carries + xs + k])}
    floats = [k for k in range(len(consts)) if is_float(names[carries + xs + k]) and k not in hoisted]
    float_xs = [k for k in range(xs) if is_float(names[carries + k])]
    ys_in = [k for k, c in enumerate(ct_ys) if c is not None and is_float(body.output[carries + k])]
    hist_in = [k for k in fc if ct_hist[k] is not None]
    if not fc and not ys_in:
        return (None,) * len(args)
    params = {"body": body, "carries": carries, "xs": xs, "reverse": reverse, "history": True}
    # a scan that kept no history (a reversed scan, when differentiated again) gets a twin that does
    outputs = parts(y if history else graph.apply("scan", args, params))
    saved = outputs[carries + n_ys:]
    first = graph._count
    labels = ([f"d_{names[k]}_next" for k in fc] + [f"d_{names[carries + xs + k]}_total" for k in floats]
              + [f"d_{body.output[carries + k]}" for k in ys_in] + list(names[:carries + xs])
              + [f"d_{names[k]}_saved" for k in hist_in])
    like = ([body.output[k] for k in fc] + [names[carries + xs + k] for k in floats]
            + [body.output[carries + k] for k in ys_in] + list(names[:carries + xs]) + [names[k] for k in hist_in])
    stand_ins = [_input(graph, label, step.nx.nodes[n]["shape"], step.nx.nodes[n]["dtype"])
                 for label, n in zip(labels, like, strict=True)]
    ends = np.cumsum([len(fc), len(floats), len(ys_in), carries, xs])
    g_in, acc_in, cy_in, c_in, x_in, ch_in = np.split(np.array(stand_ins, dtype=object), ends)
    with graph.noting(f"one step of {y.name} again"):
        bound = _replay(graph, body, (*c_in, *x_in, *consts))
    outs = [bound[o] for o in body.output]
    readers = list(dict.fromkeys(r for found in hoisted.values() for r in found))
    with graph.noting(f"BPTT of {y.name}: the cotangent of one step's outputs"):
        terms = [F.sum(outs[k] * g) for k, g in zip(fc, g_in, strict=True)]
        terms += [F.sum(outs[carries + k] * cy) for k, cy in zip(ys_in, cy_in, strict=True)]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        total = graph.rename(total.name, _free_name(graph, "step"))      # the notes say dstep/d<node>
    wrt = [*(c_in[k] for k in fc), *(x_in[k] for k in float_xs), *(consts[k] for k in floats),
           *(bound[r] for r in readers)]
    # named d_<node>_t (the gradient at step t), not d_<node>: grad will want that name for the total
    grads = autodiff.reverse(total, wrt, prefix=lambda n: f"d_{n}_t")
    d_readers = grads[len(grads) - len(readers):]
    grads = grads[:len(grads) - len(readers)]
    d_carry = dict(zip(fc, grads[:len(fc)], strict=True))
    d_xs, d_consts = grads[len(fc):len(fc) + len(float_xs)], grads[len(fc) + len(float_xs):]
    with graph.noting(f"BPTT of {y.name}"):
        for k, ch in zip(hist_in, ch_in, strict=True):
            d_carry[k] = d_carry[k] + ch
        totals = [acc + d for acc, d in zip(acc_in, d_consts, strict=True)]
    # the loop stacks what the sums after it read of each step: the readers' cotangents and the values
    # computed in the step that they read (the carries and xs are stacked already: history, sequences)
    summing = {names[carries + xs + k]: found for k, found in hoisted.items()}
    invariant = dict(zip(names[carries + xs:], consts, strict=True))
    reads = _summing_reads(graph, step, summing, invariant, varying, seqs[0].shape[0]) if hoisted else set()
    computed = {a: bound[a].name for a in step.order(reads) if a not in names}
    stacked_ys = list({t.name: t for t in (*d_xs, *d_readers, *(bound[a] for a in computed))}.values())
    stacked_names = [t.name for t in stacked_ys]      # the nodes move into the loop's body: keep their names
    d_xs_names, reader_cts = [d.name for d in d_xs], [d.name for d in d_readers]
    # the step's outputs that the loop stacked and the backward step needs are read from there, not recomputed
    reused = _read_back(graph, [*d_carry.values(), *totals, *stacked_ys], outs[carries:])
    reused_in = [_input(graph, f"{body.output[carries + j]}_saved", outs[carries + j].shape, outs[carries + j].dtype)
                 for j in reused]
    spec, extra = _extract(graph, first, stand_ins + reused_in,
                           labels + [f"{body.output[carries + j]}_saved" for j in reused],
                           [*d_carry.values(), *totals, *stacked_ys], f"{graph.name}: BPTT of {y.name}",
                           f"One step of back-propagation through {y.name!r}: the VJP of its body.",
                           {outs[carries + j].name: r.name for j, r in zip(reused, reused_in, strict=True)})
    back_init = [F.zeros_like(init[k]) if ct_carry[k] is None else ct_carry[k] for k in fc]
    back_init += [F.zeros_like(consts[k]) for k in floats]
    back_xs = ([ct_ys[k] for k in ys_in] + list(saved) + list(seqs) + [ct_hist[k] for k in hist_in]
               + [outputs[carries + j] for j in reused])
    back = parts(graph.apply("scan", (*back_init, *back_xs, *extra),
                             {"body": spec, "carries": len(fc) + len(floats), "xs": len(back_xs),
                              "reverse": not reverse, "history": False}))
    d_init = dict(zip(fc, back[:len(fc)], strict=True))
    d_const_totals = dict(zip(floats, back[len(fc):len(fc) + len(floats)], strict=True))
    stacks = dict(zip(stacked_names, back[len(fc) + len(floats):], strict=True))
    d_seqs = {k: stacks[d] for k, d in zip(float_xs, d_xs_names, strict=True)}
    if hoisted:
        steps = (dict(zip(names[:carries + xs], (*saved, *seqs), strict=True))
                 | {a: stacks[n] for a, n in computed.items()})
        unread = {}      # what the sums do not read still stands in for the VJPs' args: removed again

        def stacked(n):
            if n in steps:
                return steps[n]
            if n not in unread:
                attrs = step.nx.nodes[n]
                unread[n] = _input(graph, f"{n}_steps", (seqs[0].shape[0], *attrs["shape"]), attrs["dtype"])
            return unread[n]
        cts = dict(zip(readers, (stacks[n] for n in reader_cts), strict=True))
        with graph.noting(f"BPTT of {y.name}: summed over the steps at once"):
            for k, found in hoisted.items():
                d_const_totals[k] = _summed(graph, step, found, names[carries + xs + k], dict(invariant), varying,
                                            stacked, cts.__getitem__)
    return (*(d_init.get(k) for k in range(carries)), *(d_seqs.get(k) for k in range(xs)),
            *(d_const_totals.get(k) for k in range(len(consts))))


def _read_back(graph, results, ys):
    """The positions of the step outputs ``ys`` (replayed) that computing ``results`` needs when each one
    worth saving is read from the loop's stack instead of recomputed (what it is computed from is then not
    needed for it)."""
    saveable = {y.name: j for j, y in enumerate(ys) if _worth_saving(y)}
    seen, todo = set(), [r.name for r in results]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            if n not in saveable:
                todo.extend(graph.nx.pred[n])
    return sorted(saveable[n] for n in seen & saveable.keys())


def _varying(step, inputs):
    """The nodes of a body that change from step to step: its carries and xs (``inputs``), and what reads them."""
    return _reached(step, inputs, step.nx)


def _reached(graph, sources, among):
    """``sources`` and the nodes among ``among`` that depend on them, in one pass in creation order."""
    found = set(sources)
    for n in graph.order(among):
        if any(a in found for a in graph.nx.nodes[n]["args"]):
            found.add(n)
    return found


def _summed_after(body, first_const, varying):
    """``{const position: [the varying nodes that read it]}`` for the consts whose gradient can be summed over
    all steps after the loop, in one op per reader instead of once per step.

    A const qualifies when every varying node reading it (directly, or through loop-invariant nodes such as
    W.T) has an op that maps leading axes and reads no varying value of fewer dims than any of its args
    (so the values stacked over the steps line up with the rest), and no output of the body is loop-invariant
    and built from it.
    """
    step = body.graph
    nodes = step.nx.nodes
    live = step.upstream(list(body.output))
    found = {}
    for k, const in enumerate(body.inputs[first_const:]):
        invariant = {const} | (nx.descendants(step.nx, const) - varying)
        readers = [n for n in step.order(varying & live) if any(a in invariant for a in nodes[n]["args"])]
        if readers and not invariant & set(body.output) and all(_maps_steps(step, r, varying) for r in readers):
            found[k] = readers
    return found


def _maps_steps(step, node, varying):
    """Whether ``node`` computed on its varying args stacked over the steps computes it for each step."""
    attrs = step.nx.nodes[node]
    op = OPS[attrs["op"]]
    dims = [len(step.nx.nodes[a]["shape"]) for a in attrs["args"]]
    return (op.maps_leading_axes and not op.several
            and all(d >= max(dims) for a, d in zip(attrs["args"], dims, strict=True) if a in varying))


def _summed(graph, step, readers, const, bound, varying, stacked, cts):
    """The gradient of the body's ``const`` over all steps at once: each reader's VJP on its varying args
    stacked over the steps (``stacked(name)``; a reader's own name gives its output) and its stacked
    cotangent (``cts(reader)``), un-broadcast, then back through the loop-invariant nodes between the const
    and the reader (rebuilt on the Tensors ``bound`` holds for the body's consts). The nodes the result
    does not need are removed again."""
    first = graph._count
    total = None
    for r in readers:
        attrs = step.nx.nodes[r]
        args = [stacked(a) if a in varying else _rebuild(graph, step, [a], bound)[a] for a in attrs["args"]]
        for a, arg, g in zip(attrs["args"], args, OPS[attrs["op"]].vjp(cts(r), stacked(r), *args, **attrs["params"]),
                             strict=True):
            if g is not None and a not in varying and const in step.upstream([a]):
                g, = autodiff.reverse(arg, [bound[const]], seed=autodiff.sum_to(g, arg),
                                      prefix=lambda n: f"d_{n}_steps")
                total = g if total is None else total + g
    if total is None:
        total = F.zeros_like(bound[const])
    if total.id >= first:
        total._attrs["note"] = graph._note
    needed = graph.upstream([total.name])
    graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first and n not in needed])
    return total


def _summing_reads(graph, step, hoisted, bound, varying, length):
    """The varying body nodes (readers' args, and readers themselves for their outputs) whose values
    stacked over the ``length`` steps ``_summed`` reads for the consts ``hoisted`` (body name -> its
    readers), found by running it on stand-ins, which are removed again."""
    first = graph._count
    nodes = step.nx.nodes
    read = set()
    for const, readers in hoisted.items():
        made = {n: _input(graph, f"{n}_steps", (length, *nodes[n]["shape"]), nodes[n]["dtype"])
                for r in readers for n in (r, *(a for a in nodes[r]["args"] if a in varying))}
        cts = {r: _input(graph, f"d_{r}_steps", (length, *nodes[r]["shape"]), nodes[r]["dtype"]) for r in readers}
        total = _summed(graph, step, readers, const, dict(bound), varying, made.__getitem__, cts.__getitem__)
        up = graph.upstream([total.name])
        read |= {n for n, t in made.items() if t.name in up}
        graph.remove([n for n, i in graph.nx.nodes(data="index") if i >= first])
    return read


def _input(graph, base, shape, dtype):
    """An input node of ``graph`` named after ``base``, of a shape that may hold its free dims."""
    return graph.apply("input", (), {"shape": tuple(shape), "dtype": dtype}, _free_name(graph, base))


def _free_name(graph, base):
    """``base`` if no node has it now (a stand-in of an earlier trace may have had it), else a unique one.

    The names of stand-ins and replayed nodes show in the notes of the nodes built from them, so
    they keep the body's names where they can.
    """
    return base if base not in graph.nx else graph.unique_name(base)


def _replay(graph, body, values):
    """The body's nodes rebuilt in ``graph`` on ``values`` (one per body input): body node -> Tensor."""
    return _rebuild(graph, body.graph, list(body.output), dict(zip(body.inputs, values, strict=True)))


def _rebuild(graph, step, targets, bound):
    """The nodes of ``step`` that ``targets`` depend on, rebuilt in ``graph`` on the Tensors ``bound`` holds
    for some of them; returns ``bound``, updated."""
    for n in step.order(step.upstream(targets)):
        if n not in bound:
            attrs = step.nx.nodes[n]
            bound[n] = graph.apply(attrs["op"], tuple(bound[a] for a in attrs["args"]), attrs["params"],
                                   _free_name(graph, n))
    return bound
