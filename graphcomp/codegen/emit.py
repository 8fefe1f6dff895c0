"""Turns scheduled graph nodes into IR statements, reusing dead buffers; imports the op table and codegen."""
import math

import networkx as nx
import numpy as np

from ..errors import GraphError, UnknownNodeError
from ..op import OPS, Body
from ..shapes import is_int
from .ir import (Assign, Attr, BinOp, Call, Const, Del, For, FunctionDef, If, Index, ListComp, Loop, Name, Raise,
                 Return, Scan, Tuple, UnOp, np_attr, np_call)
from .names import Namer, display, identifier
from .printer import NumpyPrinter


def needed(graph, outputs):
    """Names of the nodes ``outputs`` depend on (inclusive), in creation order."""
    for out in outputs:
        if out not in graph.nx:
            raise UnknownNodeError(f"graph {graph.name!r} has no node {out!r}")
    found = graph.order(graph.upstream(outputs))
    # Creation order is topological (every edge goes from an older node to a newer one) unless someone
    # edited graph.nx. Checking that is linear; networkx looks for the cycle only when it fails.
    index, pred = graph.nx.nodes, graph.nx.pred
    if any(index[a]["index"] >= index[n]["index"] for n in found for a in pred[n]):
        sub = graph.nx.subgraph(found)
        if not nx.is_directed_acyclic_graph(sub):
            cycle = nx.find_cycle(sub)
            raise GraphError(f"graph {graph.name!r} has a cycle: {' -> '.join(a for a, _ in cycle)}")
        return list(nx.topological_sort(sub))
    return found


def leaves(graph, nodes):
    """The nodes among ``nodes`` whose values are fed (function arguments)."""
    return [n for n in nodes if OPS[graph.nx.nodes[n]["op"]].leaf]


class Emitter:
    """Builds one statement per computed node; inline nodes become parts of their users.

    Nodes that compute the same op on the same args with the same params are
    computed once (common subexpressions are shared here, over what is
    compiled, never while the graph is built), and array constants are
    hoisted to module level.
    """

    def __init__(self, graph, namer):
        self.graph = graph
        self.name = namer
        self.rep = {}      # node -> the node whose statement computes its value
        self.inline = {}
        self.shown = {}    # node -> how comments show it (inline nodes show their expression)
        self.fresh = set() # nodes whose statement allocates a new array in its body
        self.hoisted = {}  # identifier -> module-level assignment of a constant
        self.helpers = {}  # name -> helper source, or the FunctionDef of a loop body
        self.imports = set()  # modules the helpers need besides NumPy
        self.bodies = {}   # op.Body -> the name of its function
        self.scans = {}    # (op.Body, reverse, history, outputs given) -> the name of its loop's function
        self.subsets = {}  # (op.Body, outputs read) -> that body returning only those

    def ident(self, node):
        """The identifier of a node's value; grad's temporaries are numbered _t0, _t1, ... per module."""
        return self.name(node, temp=self.graph.nx.nodes[node]["temp"])

    def label(self, node):
        """How comments name a node: its identifier if it is a temporary, else its name."""
        return self.ident(node) if self.graph.nx.nodes[node]["temp"] else display(node)

    def ref(self, node):
        """The expression standing for ``node`` in its users."""
        node = self.rep.get(node, node)
        return self.inline.get(node) or Name(self.ident(node))

    def statements(self, nodes, keep=()):
        """One statement per computed node of ``nodes`` (one function body).

        A node whose op is one NumPy ufunc writes into the array of an
        argument that this body allocated, that nothing reads afterwards and
        that has its shape and dtype (``out=``), as careful hand-written code
        does with ``z += b``: fewer allocations and less memory. Failing that,
        a ufunc or matmul writes into an array of the same shape and dtype
        that this body allocated and nothing reads any more, so large arrays
        are recycled within a call instead of fetched fresh from the OS.
        ``keep`` are the nodes the body returns, which are never overwritten.
        Large arrays that are neither reused nor returned are deleted after
        the last statement that names them (``_freeing``).
        """
        nodes = self._share([n for n in nodes if not OPS[self.graph.nx.nodes[n]["op"]].leaf], keep)
        last = self._last_uses(nodes, keep)
        dying = {}         # statement index -> the nodes it reads last
        for a, i in last.items():
            dying.setdefault(i, []).append(a)
        owned = set()      # arrays this body allocated and may overwrite once dead
        pinned = set()     # arrays read by a statement that may return a view of them
        dead = {}          # (shape, dtype) -> owned arrays nothing reads any more, most recent last
        base = {}          # node -> the node whose new array its value is (itself, or one written in place)
        out = []
        for i, n in enumerate(nodes):
            attrs = self.graph.nx.nodes[n]
            op = OPS[attrs["op"]]
            expr = op.emit(*(self.ref(a) for a in attrs["args"]), **attrs["params"])
            given = range(len(attrs.get("outputs", ())))      # the outputs the statement gives
            if isinstance(expr, Loop):
                expr = self._loop(expr)
            elif isinstance(expr, Scan):
                read = self._parts_read(n, nodes[i + 1:])
                given = [k for k in given if k < expr.carries or k in read]
                expr = self._scan(expr, tuple(given))
            self.helpers.update(op.helpers)
            self.imports.update(op.imports)
            if op.inline:
                self._inline(n, attrs, expr)
                continue
            comment = self.comment(n, attrs, op)
            if op.several:       # one name per output; the part nodes that read them are inline
                ident = self.ident(n)
                names = [Name(self.name.local(f"{ident}_{k}")) for k in range(len(attrs["outputs"]))]
                self.inline[n] = Tuple(tuple(names))
                out.append(Assign(Tuple(tuple(names[k] for k in given)), expr, comment, node=n))
                continue
            fresh = op.fresh or allocates(expr)
            base[n] = n if fresh else None
            if op.view:      # its array is its first arg's, reshaped (or a copy): it takes it over if that dies here
                viewed = list(self.reads(self.rep.get(attrs["args"][0], attrs["args"][0]), itself=True))
                if len(viewed) == 1:
                    base[n] = base.get(viewed[0])
                if len(viewed) == 1 and viewed[0] in owned and viewed[0] not in pinned and last[viewed[0]] == i:
                    owned.discard(viewed[0])
                    fresh = True
                else:
                    pinned.update(viewed)
            elif not fresh:
                pinned.update(self.reads(n))
            for a in dict.fromkeys(self.rep.get(a, a) for a in attrs["args"]):
                if a in owned and a not in pinned and last.get(a) == i and self._same_type(a, attrs):
                    inplace = into(expr, Name(self.ident(a)))
                    if inplace is not None:
                        expr, comment, fresh = inplace, f"{comment}    (in place: {self.label(a)} is dead)", True
                        owned.discard(a)
                        base[n] = base[a]
                        break
            else:      # no argument to write into: a dead array of this body with the same shape, if any
                spare = dead.get((attrs["shape"], attrs["dtype"])) if fresh and dead else None
                reused = into(expr, Name(self.ident(spare[-1])), elementwise=False) if spare else None
                if reused is not None:
                    expr, comment = reused, f"{comment}    (into {self.label(spare[-1])}, which is dead)"
                    base[n] = base[spare[-1]]
                    owned.discard(spare.pop())
            if fresh and attrs["shape"] != ():
                owned.add(n)
                self.fresh.add(n)
            else:
                self.fresh.discard(n)
            for a in dying.get(i, ()):
                if a in owned and a not in pinned:
                    dead.setdefault((self.graph.nx.nodes[a]["shape"], self.graph.nx.nodes[a]["dtype"]), []).append(a)
            out.append(Assign(Name(self.ident(n)), expr, comment, node=n))
        return self._freeing(out, base, keep)

    def _parts_read(self, n, later):
        """The indices of the outputs of ``n`` (a node of several) that nodes among ``later`` read: what reads
        such a node is a part node, whose ``index`` says which output (``Op.several``)."""
        nodes, later = self.graph.nx.nodes, set(later)
        sources = [n, *(m for m, r in self.rep.items() if r == n)]
        return {nodes[m]["params"]["index"] for s in sources for m in self.graph.nx.succ[s] if m in later}

    def _freeing(self, out, base, keep):
        """``out`` with ``del`` statements for the large arrays (``_LARGE`` elements, free dims counted
        once) that the body allocated and does not return, after the last statement that names them or
        what shares their memory: the memory goes back to the allocator while the body runs, instead of
        piling up until it returns (then going back to the OS, and faulted in again on the next call)."""
        large = {b for b in set(base.values()) - {None}
                 if math.prod(d for d in self.graph.nx.nodes[b]["shape"] if is_int(d)) >= _LARGE}
        if not large:
            return out
        groups = {}
        for n, b in base.items():
            if b in large:
                groups.setdefault(b, []).append(n)
        position = {stmt.node: k for k, stmt in enumerate(out)}
        last = {n: position[n] for group in groups.values() for n in group}    # node -> the last statement naming it
        for stmt in out:
            for a in self.refs(stmt.node):
                if a in last:
                    last[a] = max(last[a], position[stmt.node])
        kept = {self.rep.get(k, k) for k in keep}
        freed = {}                      # statement index -> the names to delete after it
        for group in groups.values():
            if not kept & set(group):
                freed.setdefault(max(last[n] for n in group), []).extend(Name(self.ident(n)) for n in group)
        return [s for k, stmt in enumerate(out) for s in ((stmt, Del(tuple(freed[k]))) if k in freed else (stmt,))]

    def refs(self, n):
        """The computed nodes whose names the statement of ``n`` contains (through inline args)."""
        for a in self.graph.nx.nodes[n]["args"]:
            a = self.rep.get(a, a)
            if OPS[self.graph.nx.nodes[a]["op"]].inline:
                yield from self.refs(a)
            else:
                yield a

    def _loop(self, loop):
        """A loop as a list comprehension calling its body's function (stacked, or summed)."""
        index = self.name.local("i")
        items = ListComp(Call(Name(self.function(loop.body)), (Name(index), *loop.args)), index, loop.count)
        return np_call("stack", items) if loop.reduce == "stack" else Call(Name("sum"), (items,))

    def function(self, body, base="_loop"):
        """The name of the module-level function computing a loop body, built once.

        A body whose ``output`` is a tuple of nodes returns a tuple.
        """
        if body not in self.bodies:
            name = self.bodies[body] = self.name.global_(base)
            inner = Emitter(body.graph, Namer(reserved=self.name.reserved, module=self.name))
            inner.bodies = self.bodies
            inner.scans = self.scans
            inner.subsets = self.subsets
            outputs = list(body.output) if isinstance(body.output, tuple) else [body.output]
            stmts = inner.statements(needed(body.graph, outputs), keep=outputs)
            # the loop stacks or sums what it returns, or passes it to the next step: no copy needed
            results = [inner.ref(o) for o in outputs]
            self.helpers.update(inner.helpers)
            self.imports.update(inner.imports)
            self.hoisted.update(inner.hoisted)
            result = Tuple(tuple(results)) if len(results) > 1 else results[0]
            self.helpers[name] = FunctionDef(name, tuple(inner.name(n) for n in body.inputs),
                                             (*stmts, Return(result)), body.doc)
        return self.bodies[body]

    def _scan(self, scan, given):
        """A scan as a call of a module-level function that loops over time steps, built once per
        body, direction and outputs read: each step calls the body's function on the whole batch.

        The function returns the last carry, then of the stacked outputs and carry history only
        those at the positions ``given`` (the rest is never stacked).
        """
        key = (scan.body, scan.reverse, scan.history, given)
        if key not in self.scans:
            n_ys = len(scan.body.output) - scan.carries
            read = tuple(k for k in range(n_ys) if scan.carries + k in given)
            step = self.function(self._returning(scan.body, scan.carries, read), "_step")
            name = self.scans[key] = self.name.global_("_scan")
            local = Namer(reserved=self.name.reserved, module=self.name)
            inputs = scan.body.inputs
            carries = [Name(local(n)) for n in inputs[:scan.carries]]
            xs = [Name(local.local(f"{identifier(n)}_seq")) for n in inputs[scan.carries:scan.carries + scan.xs]]
            consts = [Name(local(n)) for n in inputs[scan.carries + scan.xs:]]
            ys = {k: Name(local.local(f"ys{k}")) for k in read}
            history = {c: Name(local.local(f"{c.id}_history")) for k, c in enumerate(carries)
                       if scan.history and scan.carries + n_ys + k in given}
            t, steps = local.local("t"), Name(local.local("steps"))
            bounds = ((BinOp("-", steps, Const(1)), Const(-1), Const(-1)) if scan.reverse else (steps,))
            first = BinOp("-", steps, Const(1)) if scan.reverse else Const(0)
            outputs = {k: Name(local.local(f"y{k}")) for k in read}
            targets = carries + list(outputs.values())
            loop = [*(Assign(Index(h, Name(t)), c) for c, h in history.items()),
                    Assign(Tuple(tuple(targets)) if len(targets) > 1 else targets[0],
                           Call(Name(step), (*carries, *(Index(x, Name(t)) for x in xs), *consts))),
                    # the outputs' shapes are known once the first step has run
                    *((If(BinOp("==", Name(t), first), tuple(_stack_of(y, outputs[k], steps) for k, y in ys.items())),)
                      if ys else ()),
                    *(Assign(Index(y, Name(t)), outputs[k]) for k, y in ys.items())]
            doc = (f"Run {step} over the time steps of the sequences{' from last to first' if scan.reverse else ''}; "
                   "return the last carry and the stacked outputs" + (", then the carry entering each step."
                                                                       if history else "."))
            empty = Call(Name("ValueError"), (Const("scan over a sequence of length 0: there is no step to run"),))
            self.helpers[name] = FunctionDef(
                name, tuple(c.id for c in carries + xs + consts),
                (Assign(steps, Call(Name("len"), (xs[0],))), If(BinOp("==", steps, Const(0)), (Raise(empty),)),
                 *(_stack_of(h, c, steps) for c, h in history.items()), For(t, bounds, tuple(loop)),
                 Return(Tuple((*carries, *ys.values(), *history.values())))), doc)
        return Call(Name(self.scans[key]), scan.args)

    def _returning(self, body, carries, read):
        """``body`` returning its carries and only the outputs at positions ``read`` (after the carries):
        the step function of a loop that stacks only those, free to reuse the others' buffers."""
        if len(read) == len(body.output) - carries:
            return body
        key = (body, read)
        if key not in self.subsets:
            self.subsets[key] = Body(body.graph, body.inputs,
                                     body.output[:carries] + tuple(body.output[carries + k] for k in read), body.doc)
        return self.subsets[key]

    def _share(self, nodes, keep):
        """The nodes that get a statement; each other node is mapped in ``rep`` to its equal.

        Two returned nodes are never shared: each output is an array of its own.
        """
        keep = set(keep)
        first = {}         # key -> first node with it
        shared_out = set() # nodes standing for a returned node
        own = []
        for n in nodes:
            key = self._key(n)
            same = first.get(key) if key is not None else None
            if same is not None and n in keep and (same in keep or same in shared_out):
                same = None
            if same is None:
                self.rep.pop(n, None)
                own.append(n)
                if key is not None:
                    first.setdefault(key, n)
            else:
                self.rep[n] = same
                if n in keep:
                    shared_out.add(same)
        return own

    def _key(self, n):
        """What makes two nodes equal (ops are pure); None when a param is an array (no cheap exact key)."""
        attrs = self.graph.nx.nodes[n]
        if any(isinstance(v, np.ndarray) for v in attrs["params"].values()):
            return None
        # repr, not the values: 0.0 == -0.0 and 1 == 1.0 == True, but they are different constants
        return attrs["op"], tuple(self.rep.get(a, a) for a in attrs["args"]), repr(sorted(attrs["params"].items()))

    def _inline(self, n, attrs, expr):
        """Record an inline node's expression; a constant that is more than a literal goes to module level."""
        if not attrs["args"] and not isinstance(expr, Const):
            name = self.name.global_for(n)
            self.hoisted[name] = Assign(Name(name), expr, f"{self.label(n)} = {self.comment_formula(n, attrs)}")
            self.shown[n] = self.label(n)
            self.inline[n] = Name(self.ident(n))
            return
        self.inline[n] = expr
        self.shown[n] = NumpyPrinter().print(expr)

    def _last_uses(self, nodes, keep):
        """Statement index of each node's last read in a body; len(nodes) if returned."""
        last = {}
        end = len(nodes)
        for i, n in enumerate(nodes):
            for a in self.reads(n):
                last[a] = i
        for n in keep:
            last[self.rep.get(n, n)] = end
        return last

    def reads(self, n, itself=False):
        """Nodes whose arrays node ``n``'s statement reads (through inline args and shared nodes); with
        ``itself``, those that reading ``n`` reads (``n`` unless it is inline)."""
        attrs = self.graph.nx.nodes[n]
        if itself and not OPS[attrs["op"]].inline:
            yield n
            return
        # a view op reads only its first arg's values; the others give their shapes (which in-place
        # writes never change)
        for a in attrs["args"][:1] if OPS[attrs["op"]].view else attrs["args"]:
            a = self.rep.get(a, a)
            if OPS[self.graph.nx.nodes[a]["op"]].inline:
                yield from self.reads(a)
            else:
                yield a

    def uses(self, nodes):
        """The computed (not inline) nodes whose arrays returning ``nodes`` reads."""
        for n in nodes:
            n = self.rep.get(n, n)
            if OPS[self.graph.nx.nodes[n]["op"]].inline:
                yield from self.reads(n)
            else:
                yield n

    def _same_type(self, a, attrs):
        other = self.graph.nx.nodes[a]
        return other["shape"] == attrs["shape"] and other["dtype"] == attrs["dtype"]

    def comment_formula(self, n, attrs):
        args = [self.rep.get(a, a) for a in attrs["args"]]
        return OPS[attrs["op"]].formula(*(self.shown.get(a) or self.label(a) for a in args), **attrs["params"])

    def comment(self, n, attrs, op):
        """``node = formula``, plus the chain-rule term for gradient nodes."""
        note = attrs["note"]
        return f"{self.label(n)} = {self.comment_formula(n, attrs)}" + (f"    <- {note}" if note else "")

    def output(self, node, returned):
        """The expression returned for ``node``: a new array unless its statement allocated one
        that nothing else returns (``returned``: the nodes returned so far, updated)."""
        attrs = self.graph.nx.nodes[node]
        node = self.rep.get(node, node)
        ref = self.ref(node)
        if node in self.fresh and node not in returned:
            returned.add(node)
            return ref
        return np_call("array", ref, dtype=np_attr(attrs["dtype"]))

    def helper_sources(self):
        return tuple(self.helpers[k] for k in sorted(self.helpers))


_LARGE = 4096


def _stack_of(name, like, steps):
    """``name = np.empty((steps,) + np.shape(like), np.result_type(like))``: a stack for one value per step."""
    shape = BinOp("+", Tuple((steps,)), np_call("shape", like))
    return Assign(name, np_call("empty", shape, np_call("result_type", like)))


def allocates(expr):
    """Whether evaluating ``expr`` always gives a new array, so its buffer may be reused.

    Only forms known to allocate count (arithmetic, NumPy ufuncs, ndarray
    reductions); anything else (a view, a helper call) is left alone.
    """
    if isinstance(expr, BinOp):
        return expr.op in _ALLOCATING_OPERATORS
    if isinstance(expr, UnOp):
        return expr.op == "-"
    if isinstance(expr, Call) and isinstance(expr.func, Attr):
        if expr.func.value == Name("np"):
            return isinstance(getattr(np, expr.func.attr, None), np.ufunc) or expr.func.attr in _ALLOCATING_FUNCTIONS
        return expr.func.attr in _REDUCTIONS and any(k == "axis" for k, _ in expr.kwargs)
    return False


_ALLOCATING_OPERATORS = {"+", "-", "*", "/", "@", "**", ">", "<", ">=", "<=", "==", "!="}
_ALLOCATING_FUNCTIONS = {"where", "zeros_like", "zeros", "matmul", "stack"}
_REDUCTIONS = {"sum", "max", "min", "prod"}


_OPERATOR_UFUNCS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def into(expr, buffer, elementwise=True):
    """``expr`` writing its result into ``buffer`` (``out=``), or None if it is not one NumPy ufunc call.

    A matmul qualifies only when not ``elementwise``: its ``out`` must not be one of its operands.
    """
    if isinstance(expr, BinOp) and (expr.op in _OPERATOR_UFUNCS or expr.op == "@" and not elementwise):
        return np_call(_OPERATOR_UFUNCS.get(expr.op, "matmul"), expr.left, expr.right, out=buffer)
    if isinstance(expr, UnOp) and expr.op == "-":
        return np_call("negative", expr.operand, out=buffer)
    if (isinstance(expr, Call) and isinstance(expr.func, Attr) and expr.func.value == Name("np")
            and isinstance(getattr(np, expr.func.attr, None), np.ufunc)):
        return Call(expr.func, expr.args, expr.kwargs + (("out", buffer),))
    return None
