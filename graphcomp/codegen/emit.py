"""Turns scheduled graph nodes into IR statements and whole IR modules; imports graph-side op table and codegen.ir."""
import networkx as nx

from ..errors import GraphError, UnknownNodeError
from ..op import OPS
from .ir import Assign, Name, np_attr, np_call
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

    def statements(self, nodes):
        out = []
        for n in nodes:
            attrs = self.graph.nx.nodes[n]
            op = OPS[attrs["op"]]
            if op.leaf:
                continue
            expr = op.emit(*(self.ref(a) for a in attrs["args"]), **attrs["params"])
            self.helpers.update(op.helpers)
            if op.inline:
                self.inline[n] = expr
                self.shown[n] = NumpyPrinter().print(expr)
            else:
                out.append(Assign(Name(self.name(n)), expr, self.comment(n, attrs, op)))
        return out

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
