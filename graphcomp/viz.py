"""Pictures of graphs: Graphviz DOT text, and SVG/PNG/PDF through the Graphviz program; imports graph,
op and codegen.

The DOT text is ours: node ids are ``n<creation index>``, every name and
formula is shown through ``printable`` and quoted with its backslashes,
quotes and ``&`` escaped, so no node name can change the picture's
structure. Rendering runs the ``dot`` program in a subprocess: no Python
package is needed (the PyPI bindings, ``graphviz`` and ``pydot``, run the
same program and would add a dependency for the one call we make).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from .codegen.compiled import graph_of
from .codegen.names import printable
from .errors import GraphError
from .files import atomic
from .graph import Graph, Tensor
from .op import OPS
from .shapes import format_shape

FORMATS = ("svg", "png", "pdf")
LABEL_CHARS = 40        # longer names and formulas are cut in labels (tooltips keep more)
TOOLTIP_CHARS = 1000
NOTEBOOK_NODES = 1000   # a notebook shows larger graphs as text: Graphviz takes seconds on them
INSTALL = ("install Graphviz (apt-get install graphviz, brew install graphviz, "
           "conda install -c conda-forge graphviz, or https://graphviz.org/download/)")

_STYLE = {   # node kind -> DOT attributes
    "input": 'shape=ellipse, fillcolor="#dbeafe"',
    "param": 'shape=box, fillcolor="#fde68a"',
    "constant": 'shape=plaintext, style="", fontcolor="#6b7280"',
    "op": 'fillcolor="#ffffff"',
    "gradient": 'fillcolor="#ede9fe", color="#7c3aed"',
}


class RenderError(GraphError, RuntimeError):
    """A picture could not be written: no Graphviz program, an unknown format, or Graphviz failed."""


def to_dot(tensors_or_graph: Graph | Tensor | list[Tensor], gradients: bool = False, shapes: bool = True) -> str:
    """The Graphviz DOT text of a graph's forward nodes (and, if asked, its gradient nodes).

    Args:
        tensors_or_graph: a Graph (all its nodes), or a Tensor or list of
            Tensors (they and the nodes they depend on).
        gradients: also draw the gradient nodes (the nodes ``grad``,
            ``jvp`` and ``compile_training`` added): in a cluster of their
            own, and each gradient total ``d_<node>`` linked by a dashed edge
            to the node it differentiates. For Tensors, the gradients drawn
            are those that ``grad`` built of them.
        shapes: show each node's shape and dtype.

    Returns:
        str: DOT text; the same graph always gives the same text.

    Raises:
        GraphError: the argument is not a Graph, Tensor or list of Tensors of one graph.

    Example:
        >>> print(gc.to_dot(loss, gradients=True))
        digraph graphcomp {
        ...
    """
    graph, names = _nodes(tensors_or_graph, gradients)
    shown = set(names)
    nodes = graph.nx.nodes
    forward = [n for n in names if not _derived(graph, n)]
    derived = [n for n in names if _derived(graph, n)]
    outputs = set() if isinstance(tensors_or_graph, Graph) else {t.name for t in _tensors(tensors_or_graph)}
    title = _quote([_clip(printable(graph.name), LABEL_CHARS)])
    lines = ["digraph graphcomp {",
             f"  graph [rankdir=TB, fontname=Helvetica, labelloc=t, label={title}];",
             '  node [fontname=Helvetica, fontsize=10, shape=box, style="rounded,filled"];',
             '  edge [color="#4b5563", arrowsize=0.6];']
    lines += [_node(graph, n, "op", shapes, n in outputs) for n in forward]
    if derived:
        lines += ["  subgraph cluster_gradients {",
                  '    graph [label="gradients", style="rounded,filled", fillcolor="#f5f3ff", color="#c4b5fd"];']
        lines += ["  " + _node(graph, n, "gradient", shapes, n in outputs) for n in derived]
        lines.append("  }")
    for n in names:
        for a in dict.fromkeys(nodes[n]["args"]):
            if a in shown:
                slots = len(graph.nx.edges[a, n]["positions"])
                extra = f' [label="\u00d7{slots}"]' if slots > 1 else ""
                lines.append(f"  {_id(graph, a)} -> {_id(graph, n)}{extra};")
    forward_set = set(forward)
    for n in derived:
        target = _differentiates(graph, nodes[n], forward_set)
        if target is not None:
            lines.append(f"  {_id(graph, target)} -> {_id(graph, n)} [style=dashed, color=\"#7c3aed\", "
                         f"arrowhead=none, constraint=false, "
                         f"tooltip={_quote([_clip(printable(nodes[n]['note']), TOOLTIP_CHARS)])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensors_or_graph: Graph | Tensor | list[Tensor], path: str | os.PathLike, **options) -> str:
    """Draw ``to_dot(tensors_or_graph, **options)`` into ``path`` with the Graphviz ``dot`` program.

    The format comes from the suffix: ``.svg``, ``.png`` or ``.pdf``. The file
    is written atomically: a failure leaves no half-written file (and an
    existing file as it was).

    Args:
        tensors_or_graph: what to draw (see ``to_dot``).
        path: the file to write.
        **options: ``gradients``, ``shapes`` (see ``to_dot``).

    Returns:
        The path written, as a str.

    Raises:
        RenderError: the suffix is none of those, Graphviz is not installed
            (the message says how to get it), or it failed.
    """
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise RenderError(f"render: cannot tell the picture format from {path!r}; use a path ending in "
                          f"{', '.join('.' + f for f in FORMATS[:-1])} or .{FORMATS[-1]}")
    picture = _run_dot(to_dot(tensors_or_graph, **options), fmt)
    with atomic(path, f".{fmt}") as f:
        f.write(picture)
    return path


def svg(graph: Graph) -> str | None:
    """The SVG picture of ``graph`` with its gradients, or None if Graphviz is missing or fails, or
    the graph has more than ``NOTEBOOK_NODES`` nodes (what a notebook display hook needs: None makes
    Jupyter show the text repr)."""
    if graph.nx.number_of_nodes() > NOTEBOOK_NODES:
        return None
    try:
        return _run_dot(to_dot(graph, gradients=True), "svg").decode("utf-8")
    except RenderError:
        return None


def dot_program() -> str | None:
    """The path of the Graphviz ``dot`` program, or None if it is not on PATH."""
    return shutil.which("dot")


def _run_dot(text, fmt):
    program = dot_program()
    if program is None:
        raise RenderError(f"render: the Graphviz program 'dot' is not on PATH; {INSTALL}, "
                          "or save gc.to_dot(...) to a .dot file and render it elsewhere")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RenderError(f"render: running {program!r} failed: {e}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"render: Graphviz failed (exit {done.returncode}): "
                          f"{message[0] if message else 'no message'}")
    return done.stdout


def _tensors(value):
    return [value] if isinstance(value, Tensor) else value


def _nodes(value, gradients):
    """The graph and the names of the nodes to draw, in creation order."""
    if isinstance(value, Graph):
        graph = value
        names = list(graph.nx.nodes)
    elif isinstance(value, (Tensor, list, tuple)):
        tensors = _tensors(value)
        graph = graph_of(tensors)
        roots = [t.name for t in tensors]
        if gradients:
            ids = {t.id for t in tensors}
            # the results grad built of these tensors (graph._grads: (y id, seed id, prefix) -> {w id: result id})
            roots += [graph._names[r] for (y, *_), results in graph._grads.items() if y in ids
                      for r in results.values() if r in graph._names]
        names = graph.upstream(roots)
    else:
        raise GraphError(f"to_dot: expected a Graph, a Tensor or a list of Tensors, got {type(value).__name__}")
    if not gradients:
        names = [n for n in names if not _derived(graph, n)]
    return graph, graph.order(names)


def _derived(graph, name):
    """Whether a node belongs to a derivative: grad, jvp and compile_training note the nodes they add,
    and a constant only they use (the seed 1.0 of a gradient) goes with them."""
    attrs = graph.nx.nodes[name]
    if attrs["note"] is not None:
        return True
    users = graph.nx.succ[name]
    return attrs["op"] == "constant" and bool(users) and all(graph.nx.nodes[u]["note"] is not None for u in users)


def _node(graph, name, kind, shapes, output):
    """The DOT statement of one node: its name, op and (if ``shapes``) shape and dtype."""
    attrs = graph.nx.nodes[name]
    op = OPS[attrs["op"]]
    formula = op.formula(*attrs["args"], **attrs["params"])
    if attrs["op"] == "constant" or op.leaf:
        kind = attrs["op"] if attrs["op"] in _STYLE else "input"
    if attrs["op"] == "constant":
        lines = [printable(formula)]
    elif _named_after_op(name, attrs["op"]):
        lines = [printable(name)]
    else:
        lines = [printable(name), attrs["op"]]
    if shapes:
        lines.append(f"{format_shape(attrs['shape'])} {attrs['dtype']}")
    tooltip = printable(name) + ("" if op.leaf else f" = {printable(formula)}")
    extra = ", penwidth=2" if output else ""
    return (f"  {_id(graph, name)} [label={_quote([_clip(line, LABEL_CHARS) for line in lines])}, "
            f"tooltip={_quote([_clip(tooltip, TOOLTIP_CHARS)])}, {_STYLE[kind]}{extra}];")


def _named_after_op(name, op):
    """Whether the node has the name its op gave it (``matmul``, ``matmul_1``): then the label says it once."""
    return name == op or (name.startswith(op + "_") and name[len(op) + 1:].isdigit())


def _differentiates(graph, attrs, forward):
    """The forward node a gradient total differentiates (``total_of``, which grad records), or None
    for other derived nodes (temporaries, forward mode)."""
    of = attrs.get("total_of")
    name = graph._names.get(of) if of is not None else None
    return name if name in forward else None


def _id(graph, name):
    return f"n{graph.nx.nodes[name]['index']}"


def _clip(text, limit):
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _quote(lines):
    """A DOT string of ``lines`` (already printable: no newlines), centred line by line."""
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;") for line in lines]
    return '"' + "\\n".join(escaped) + '"'
