"""Turns scheduled graph nodes into IR statements, reusing dead buffers; imports the op table and codegen."""
import networkx as nx
import numpy as np

from ..errors import GraphError, UnknownNodeError
from ..op import OPS
from .ir import Assign, Attr, BinOp, Call, Name, UnOp, np_attr, np_call
from .names import display
from .printer import NumpyPrinter


def needed(graph, outputs):
    """Names of the nodes ``outputs`` depend on (inclusive), in creation order."""
    for out in outputs:
        if out not in graph.nx:
            raise UnknownNodeError(f"graph {graph.name!r} has no node {out!r}")
    found = graph.upstream(outputs)
    if not nx.is_directed_acyclic_graph(graph.nx.subgraph(found)):
        cycle = nx.find_cycle(graph.nx.subgraph(found))
        raise GraphError(f"graph {graph.name!r} has a cycle: {' -> '.join(a for a, _ in cycle)}")
    return graph.order(found)


def leaves(graph, nodes):
    """The nodes among ``nodes`` whose values are fed (function arguments)."""
    return [n for n in nodes if OPS[graph.nx.nodes[n]["op"]].leaf]


class Emitter:
    """Builds one statement per computed node; inline nodes become parts of their users."""

    def __init__(self, graph, namer):
        self.graph = graph
        self.name = namer
        self.inline = {}
        self.shown = {}    # node -> how comments show it (inline nodes show their expression)
        self.helpers = {}

    def ref(self, node):
        """The expression standing for ``node`` in its users."""
        return self.inline.get(node) or Name(self.name(node))

    def statements(self, nodes, keep=()):
        """One statement per computed node of ``nodes`` (one function body).

        A node whose op is one NumPy ufunc writes into the array of an
        argument that this body computed, that nothing reads afterwards and
        that has its shape and dtype (``out=``), as careful hand-written code
        does with ``z += b``: fewer allocations and less memory. ``keep`` are
        the nodes the body returns, which are never overwritten.
        """
        nodes = [n for n in nodes if not OPS[self.graph.nx.nodes[n]["op"]].leaf]
        last = self._last_uses(nodes, keep)
        owned = set()      # arrays this body allocated and may overwrite once dead
        out = []
        for i, n in enumerate(nodes):
            attrs = self.graph.nx.nodes[n]
            op = OPS[attrs["op"]]
            expr = op.emit(*(self.ref(a) for a in attrs["args"]), **attrs["params"])
            self.helpers.update(op.helpers)
            if op.inline:
                self.inline[n] = expr
                self.shown[n] = NumpyPrinter().print(expr)
                continue
            comment = self.comment(n, attrs, op)
            for a in dict.fromkeys(attrs["args"]):
                if a in owned and last[a] == i and self._same_type(a, attrs):
                    inplace = into(expr, Name(self.name(a)))
                    if inplace is not None:
                        expr, comment = inplace, f"{comment}    (in place: {display(a)} is dead)"
                        owned.discard(a)
                        break
            if not op.view and attrs["shape"] != ():
                owned.add(n)
            out.append(Assign(Name(self.name(n)), expr, comment))
        return out

    def _last_uses(self, nodes, keep):
        """Statement index of each node's last read in a body; len(nodes) if returned or viewed."""
        last = {}
        end = len(nodes)
        graph = self.graph.nx
        for i, n in enumerate(nodes):
            viewed = OPS[graph.nodes[n]["op"]].view
            for a in self._reads(n):
                last[a] = end if viewed or last.get(a) == end else i
        for n in keep:
            last[n] = end
        return last

    def _reads(self, n):
        """Nodes whose arrays node ``n``'s statement reads (through inline args too)."""
        for a in self.graph.nx.nodes[n]["args"]:
            if OPS[self.graph.nx.nodes[a]["op"]].inline:
                yield from self._reads(a)
            else:
                yield a

    def _same_type(self, a, attrs):
        other = self.graph.nx.nodes[a]
        return other["shape"] == attrs["shape"] and other["dtype"] == attrs["dtype"]

    def comment(self, n, attrs, op):
        """``node = formula``, plus the chain-rule term for gradient nodes."""
        formula = op.formula(*(self.shown.get(a) or display(a) for a in attrs["args"]),
                             **attrs["params"])
        note = attrs["note"]
        return f"{display(n)} = {formula}" + (f"    <- {note}" if note else "")

    def output(self, node):
        """The expression returned for ``node``: inline constants become arrays of their dtype."""
        attrs = self.graph.nx.nodes[node]
        if node in self.inline:
            return np_call("asarray", self.inline[node], dtype=np_attr(attrs["dtype"]))
        return Name(self.name(node))

    def helper_sources(self):
        return tuple(self.helpers[k] for k in sorted(self.helpers))


_OPERATOR_UFUNCS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def into(expr, buffer):
    """``expr`` writing its result into ``buffer`` (``out=``), or None if it is not one NumPy ufunc call."""
    if isinstance(expr, BinOp) and expr.op in _OPERATOR_UFUNCS:
        return np_call(_OPERATOR_UFUNCS[expr.op], expr.left, expr.right, out=buffer)
    if isinstance(expr, UnOp) and expr.op == "-":
        return np_call("negative", expr.operand, out=buffer)
    if (isinstance(expr, Call) and isinstance(expr.func, Attr) and expr.func.value == Name("np")
            and isinstance(getattr(np, expr.func.attr, None), np.ufunc)):
        return Call(expr.func, expr.args, expr.kwargs + (("out", buffer),))
    return None
