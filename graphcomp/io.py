"""Graph files: a Graph as versioned JSON, loaded back fully validated; imports errors, files, shapes, graph, op,
symbolic.

The format is generic over ops: a node is its op's registry key, its args,
and its params encoded by *type* (numbers, strings, tuples, arrays, dtypes,
loop bodies), so any registered op is saved without code of its own. Loading
checks the file's structure, types and size limits, then rebuilds the graph
node by node through ``Graph.apply`` (the one way nodes enter a graph): each
op checks its params and re-infers the shape and dtype, which must be what
the file says. Nothing read from a file is passed to ``eval``, ``exec``,
``pickle`` or ``sympify``; element-wise ops defined with sympy are stored as
``srepr`` text and read by the whitelisting parser of ``symbolic.text``.
See docs/graph-file.md for the format and docs/graph-file.schema.json for its
JSON Schema.
"""
from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import math
import numbers
import os
import re
import zipfile
from collections.abc import Mapping

import numpy as np
import sympy as sp

from .errors import GraphError, GraphFileError
from .files import atomic
from .graph import Graph
from .op import OPS, Body
from .shapes import format_shape, is_anonymous
from .symbolic.expression import Expression, elementwise
from .symbolic.text import parse

FORMAT = "graphcomp-graph"
VERSION = 1
# dtypes a node, a constant or a param value may have ("object": the tuple value of a node with several outputs)
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
          "float64")
NODE_DTYPES = DTYPES + ("object",)
INLINE = 64              # arrays of up to this many entries (all finite) are written as JSON lists
_ANONYMOUS = re.compile(r"\?[0-9]{1,9}")
_FIELD = re.compile(r"field '([^']*)'((?:\[[0-9]+\]|\.\w+)+)")
_FIELDS = re.compile(r"field '([^']*)', field '([^']*)'")
_TAGS = ("float", "list", "array", "scalar", "dtype", "body")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Size limits that ``load_graph`` enforces before building anything.

    Attributes:
        file_bytes: size of the JSON file.
        nodes: nodes in the whole file (loop bodies included).
        ndim: dims of a shape.
        dim: largest static dim.
        name_chars: length of a node name or a graph name.
        text_chars: length of any other string (notes, docs, sympy text).
        constant_bytes: array constants of the whole file together.
        values_bytes: the param values of the side ``.npz`` (uncompressed).
        depth: nesting of params and loop bodies.
    """

    file_bytes: int = 256 * 2 ** 20
    nodes: int = 100_000
    ndim: int = 32
    dim: int = 2 ** 40
    name_chars: int = 1_000
    text_chars: int = 100_000
    constant_bytes: int = 64 * 2 ** 20
    values_bytes: int = 2 ** 31
    depth: int = 16


# ---- saving ---------------------------------------------------------------------------------------


def save_graph(graph: Graph, path, values: Mapping | None = None) -> str:
    """Write ``graph`` to ``path`` as a versioned JSON graph file (see docs/graph-file.md).

    Args:
        graph: the Graph; every node is saved, gradient nodes included.
        path: the ``.json`` file to write (atomically: a failed save leaves no half file).
        values: optional ``{param name: array}``; written beside the file as
            ``<stem>.npz`` (the JSON names it) and read back by
            ``load_graph(path, with_values=True)``.

    Returns:
        The path written, as a str.

    Raises:
        GraphFileError: a param of a type the format cannot hold (naming the
            node and param), or ``values`` that are not the graph's params.

    Example:
        >>> gc.save_graph(g, "mlp.json", values={"W1": W1, "b1": b1})
    """
    if not isinstance(graph, Graph):
        raise GraphFileError(f"save_graph: expected a gc.Graph, got {type(graph).__name__}")
    path = os.fspath(path)
    arrays = None if values is None else _check_values(graph, values, "save_graph: values")
    side = None if values is None else os.path.splitext(os.path.basename(path))[0] + ".npz"
    text = _dumps(_document(graph, side))
    if arrays is not None:
        with atomic(os.path.join(os.path.dirname(os.path.abspath(path)), side), ".npz") as f:
            np.savez(f, **arrays)
    with atomic(path, ".json", text=True) as f:
        f.write(text)
    return path


def _document(graph, values=None):
    """The JSON document of a graph (``values``: the name of its side .npz, if any)."""
    doc = {"format": FORMAT, "version": VERSION, "ops": _op_definitions(graph), "graph": _encode_graph(graph)}
    if values is not None:
        doc["values"] = values
    return doc


def _dumps(doc):
    """The document as ASCII JSON (so bidi controls and look-alikes in names show as escapes), one node
    and one op per line."""
    def one(value):
        return json.dumps(value, ensure_ascii=True, allow_nan=False)

    graph = doc["graph"]
    lines = ["{", f' "format": {one(doc["format"])},', f' "version": {one(doc["version"])},',
             ' "ops": [' + ",".join(f"\n  {one(op)}" for op in doc["ops"]) + ("\n ]," if doc["ops"] else "],"),
             f' "graph": {{"name": {one(graph["name"])}, "dtype": {one(graph["dtype"])}, "nodes": [',
             ",\n".join(f"  {one(node)}" for node in graph["nodes"]),
             " ]}" + ("," if "values" in doc else ""),
             *([f' "values": {one(doc["values"])}'] if "values" in doc else []), "}"]
    return "\n".join(lines) + "\n"


def _encode_graph(graph):
    nodes = []
    names = graph._names
    for n in graph.order(graph.nx):
        attrs = graph.nx.nodes[n]
        where = f"node {n!r}"
        node = {"name": n, "op": attrs["op"], "args": list(attrs["args"]),
                "params": {k: _encode(v, f"{where}, param {k!r}") for k, v in attrs["params"].items()},
                "shape": list(attrs["shape"]), "dtype": attrs["dtype"]}
        if "outputs" in attrs:
            node["outputs"] = [[list(s), d] for s, d in attrs["outputs"]]
        if attrs["note"] is not None:
            node["note"] = attrs["note"]
        if attrs["temp"]:
            node["temp"] = True
        if not attrs["named"]:
            node["named"] = False
        of = attrs.get("total_of")
        if of is not None and of in names:
            node["total_of"] = names[of]
        nodes.append(node)
    return {"name": graph.name, "dtype": graph.dtype, "nodes": nodes}


def _encode(value, where):
    """A param as JSON: JSON's own types as themselves, a tuple as a list, anything else tagged by type."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return [_encode(v, where) for v in value]
    if isinstance(value, list):
        return {"list": [_encode(v, where) for v in value]}
    if isinstance(value, np.ndarray):
        return {"array": _encode_array(value, where)}
    if isinstance(value, np.generic):
        return {"scalar": _encode_array(np.asarray(value), where)}
    if isinstance(value, np.dtype):
        return {"dtype": value.name}
    if isinstance(value, Body):
        output = value.output if isinstance(value.output, str) else list(value.output)
        return {"body": {"graph": _encode_graph(value.graph), "inputs": list(value.inputs), "output": output,
                         "doc": value.doc}}
    raise GraphFileError(f"{where}: a graph file cannot hold a {type(value).__module__}.{type(value).__qualname__} "
                         f"({value!r}); params may be numbers, strings, None, tuples, lists, NumPy arrays, "
                         "scalars and dtypes, and loop bodies")


def _encode_array(array, where):
    if array.dtype.name not in DTYPES:
        raise GraphFileError(f"{where}: arrays of dtype {array.dtype} cannot be saved (expected one of {DTYPES})")
    out = {"dtype": array.dtype.name, "shape": list(array.shape)}
    if array.size <= INLINE and (array.dtype.kind != "f" or np.isfinite(array).all()):
        out["data"] = array.reshape(-1).tolist()
    else:
        out["base64"] = base64.b64encode(np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
                                         .tobytes()).decode("ascii")
    return out


def _op_definitions(graph):
    """The element-wise ops the graph (and its loop bodies) use that a fresh process lacks: sympy
    definitions of the user's own ops, and which derivative each derivative op is."""
    found = {}

    def add(op):
        if op.name in found or (op.builtin and op.of is None):
            return
        if op.of is not None:
            add(op.of[0])
            found[op.name] = {"name": op.name, "derivative_of": op.of[0].name, "arg": op.of[1]}
        else:
            found[op.name] = {"name": op.name, "expr": sp.srepr(op.expr), "symbols": [s.name for s in op.symbols],
                              "params": {c.name: v for c, v in op.constants.items()},
                              "derivatives": None if op.given is None else [sp.srepr(d) for d in op.given],
                              "doc": op.__doc__}

    def visit(g):
        for _, attrs in g.nx.nodes(data=True):
            op = OPS.get(attrs["op"])
            if isinstance(op, Expression):
                add(op)
            for v in attrs["params"].values():
                if isinstance(v, Body):
                    visit(v.graph)

    visit(graph)
    return list(found.values())


def _check_values(graph, values, what):
    """``values`` as arrays, checked to be params of ``graph`` with their shapes and dtypes."""
    if not isinstance(values, Mapping):
        raise GraphFileError(f"{what}: expected a mapping of param names to arrays, got {type(values).__name__}")
    params = {n: attrs for n, attrs in graph.nx.nodes(data=True) if attrs["op"] == "param"}
    out = {}
    for name, value in values.items():
        if name not in params:
            raise GraphFileError(f"{what}: {name!r} is not a param of graph {graph.name!r} "
                                 f"(params: {sorted(params)})")
        if not isinstance(value, np.ndarray) or value.dtype.name != params[name]["dtype"]:
            raise GraphFileError(f"{what}: {name!r} must be a NumPy array of dtype {params[name]['dtype']}, got "
                                 f"{getattr(value, 'dtype', type(value).__name__)}")
        shape = params[name]["shape"]
        if value.ndim != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(shape, value.shape)):
            raise GraphFileError(f"{what}: {name!r} has shape {value.shape}, expected {format_shape(shape)}")
        out[name] = value
    return out


# ---- loading --------------------------------------------------------------------------------------


def load_graph(path, *, with_values: bool = False, limits: Limits = Limits()):  # noqa: B008 - frozen
    """Read a graph file written by ``save_graph``, validating everything before building anything.

    Args:
        path: the ``.json`` graph file.
        with_values: also read the param values the file names (its side
            ``.npz``, loaded without pickle) and return ``(graph, values)``.
        limits: the size limits (``graphcomp.io.Limits``) to enforce.

    Returns:
        The Graph (with its element-wise ops registered, as ``gc.elementwise``
        would), or ``(graph, {param name: array})`` with ``with_values``.

    Raises:
        GraphFileError: the file is not a graph file or not valid: a newer
            format version, an unknown op, a bad param, a shape that does not
            re-infer, args that refer to a later node (a cycle), a repeated
            name, a size limit; the message names the node and the field.

    Example:
        >>> g = gc.load_graph("mlp.json")
        >>> loss = g["loss"]
    """
    path = os.fspath(path)
    label = repr(os.path.basename(path))
    try:
        size = os.path.getsize(path)
        if size > limits.file_bytes:
            raise GraphFileError(f"graph file {label}: {size} bytes, more than the limit of {limits.file_bytes}")
        with open(path, "rb") as f:
            raw = f.read(limits.file_bytes + 1)
    except OSError as e:
        raise GraphFileError(f"graph file {label}: cannot read it: {e.strerror or e}") from None
    graph, values = loads(raw, limits=limits, label=label, directory=os.path.dirname(os.path.abspath(path)),
                          with_values=with_values)
    return (graph, values) if with_values else graph


def loads(raw, *, limits: Limits = Limits(), label="<text>", directory=None, with_values=False):  # noqa: B008
    """``(graph, values or None)`` from the bytes (or str) of a graph file; see ``load_graph``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if len(text) > limits.file_bytes:
            raise GraphFileError(f"graph file {label}: more than the limit of {limits.file_bytes} bytes")
        doc = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise GraphFileError(f"graph file {label}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise GraphFileError(f"graph file {label}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise GraphFileError(f"graph file {label}: not JSON this reader accepts: {e}") from None
    reader = _Reader(limits, label)
    saved = dict(OPS)
    try:
        reader.header(doc)
        ops = reader.check_ops(doc.get("ops", []))
        plan = reader.check_graph(doc["graph"], "graph", 0)
        side = reader.values_name(doc.get("values"))
        reader.define_ops(ops)          # everything is checked: now build
        graph = reader.build(plan)
        values = reader.values(side, graph, directory) if with_values else None
    except BaseException:
        OPS.clear()          # loading failed: no op the file defined stays registered
        OPS.update(saved)
        raise
    return graph, values


def _no_constant(name):
    raise GraphFileError(f"{name} is not JSON; a graph file writes non-finite floats as {{\"float\": \"{name}\"}}")


class _Reader:
    """Checks one document and builds its graph; every message names the place at fault."""

    def __init__(self, limits, label):
        self.limits = limits
        self.label = label
        self.nodes = 0
        self.constant_bytes = 0
        self.defined = set()      # names of the ops the file defines

    def fail(self, where, problem):
        where = _FIELD.sub(r"field '\1\2'", where)    # field 'shape'[0] -> field 'shape[0]'
        where = _FIELDS.sub(r"field '\1.\2'", where)  # field 'params.body.graph', field 'dtype' -> one field
        if len(problem) > 1_000:        # (a 100k-character name quoted by an op's message)
            problem = problem[:999] + "\u2026"
        raise GraphFileError(f"graph file {self.label}: {where}: {problem}")

    # -- structure

    def fields(self, obj, where, required, optional=()):
        if not isinstance(obj, dict):
            self.fail(where, f"expected a JSON object, got {_kind(obj)}")
        missing = [k for k in required if k not in obj]
        if missing:
            self.fail(where, f"missing field {missing[0]!r}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            self.fail(where, f"unknown field {_short(unknown[0])} (fields: {', '.join([*required, *optional])})")
        return obj

    def text(self, value, where, limit=None, none=False):
        if value is None and none:
            return None
        if not isinstance(value, str):
            self.fail(where, f"expected a string{' or null' if none else ''}, got {_kind(value)}")
        limit = self.limits.text_chars if limit is None else limit
        if len(value) > limit:
            self.fail(where, f"{len(value)} characters, more than the limit of {limit}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(where, "holds a lone surrogate (\\ud800-\\udfff), which is not text")
        return value

    def flag(self, value, where):
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {_kind(value)}")
        return value

    def listing(self, value, where, limit=None):
        if not isinstance(value, list):
            self.fail(where, f"expected a JSON array, got {_kind(value)}")
        if limit is not None and len(value) > limit:
            self.fail(where, f"{len(value)} entries, more than the limit of {limit}")
        return value

    def header(self, doc):
        self.fields(doc, "the document", ("format", "version", "graph"), ("ops", "values"))
        if doc["format"] != FORMAT:
            self.fail("field 'format'", f"expected {FORMAT!r}, got {_short(doc['format'])}")
        version = doc["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail("field 'version'", f"expected a positive integer, got {_short(version)}")
        if version > VERSION:
            self.fail("field 'version'", f"format version {version} is newer than this graphcomp reads "
                                         f"(up to {VERSION}); upgrade graphcomp to load it")

    # -- element-wise ops: checked first, defined when everything is checked

    def check_ops(self, ops):
        """What each entry of ``ops`` defines, checked (sympy text parsed); registers nothing."""
        self.listing(ops, "field 'ops'", 1_000)
        plans = []
        for i, spec in enumerate(ops):
            where = f"ops[{i}]"
            name = spec.get("name") if isinstance(spec, dict) else None
            if isinstance(name, str):
                where = f"op {_short(name)} (ops[{i}])"
            if isinstance(spec, dict) and "derivative_of" in spec:
                self.fields(spec, where, ("name", "derivative_of", "arg"))
                arg = spec["arg"]
                if not isinstance(arg, int) or isinstance(arg, bool) or not 0 <= arg < 64:
                    self.fail(f"{where}, field 'arg'", f"expected an argument index, got {_short(arg)}")
                plans.append((self.derivative, where, (
                    self.text(spec["name"], f"{where}, field 'name'", self.limits.name_chars),
                    self.text(spec["derivative_of"], f"{where}, field 'derivative_of'", self.limits.name_chars), arg)))
            else:
                self.fields(spec, where, ("name", "expr", "symbols", "params", "derivatives", "doc"))
                plans.append((self.expression, where, self.check_expression(spec, where)))
            self.defined.add(plans[-1][2][0])
        return plans

    def check_expression(self, spec, where):
        name = self.text(spec["name"], f"{where}, field 'name'", self.limits.name_chars)
        expr = self.sympy(spec["expr"], f"{where}, field 'expr'")
        symbols = [self.text(s, f"{where}, field 'symbols[{k}]'", self.limits.name_chars)
                   for k, s in enumerate(self.listing(spec["symbols"], f"{where}, field 'symbols'", 64))]
        params = spec["params"]
        if not isinstance(params, dict):
            self.fail(f"{where}, field 'params'", f"expected a JSON object, got {_kind(params)}")
        for key, v in params.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                self.fail(f"{where}, field 'params.{_key(key)}'", f"expected a number, got {_kind(v)}")
        derivatives = spec["derivatives"]
        if derivatives is not None:
            derivatives = [self.sympy(d, f"{where}, field 'derivatives[{k}]'")
                           for k, d in enumerate(self.listing(derivatives, f"{where}, field 'derivatives'", 64))]
        return name, expr, symbols, params, derivatives, self.text(spec["doc"], f"{where}, field 'doc'")

    def define_ops(self, plans):
        for define, where, plan in plans:
            define(where, *plan)

    def expression(self, where, name, expr, symbols, params, derivatives, doc):
        by_name = {s.name: s for s in expr.free_symbols}
        found = [by_name.get(s, sp.Symbol(s) if s.isidentifier() else s) for s in symbols]
        constants = {by_name.get(k, k): v for k, v in params.items()}
        old = OPS.get(name)
        try:
            elementwise(name, expr, *found, derivatives=derivatives, params=constants, doc=doc)
        except GraphError as e:
            self.fail(where, str(e))
        if old is not None and old != OPS[name]:
            OPS[name] = old
            self.fail(where, f"an element-wise op {name!r} with another definition is registered in this "
                             f"process ({old.expr} here, {expr} in the file); rename one of them")

    def derivative(self, where, name, base, arg):
        op = OPS.get(base)
        if not isinstance(op, Expression):
            self.fail(f"{where}, field 'derivative_of'", f"{base!r} is not an element-wise op defined by sympy")
        if arg >= len(op.symbols):
            self.fail(f"{where}, field 'arg'", f"{base!r} takes {len(op.symbols)} argument(s), got index {arg}")
        made = op.partial(arg)
        if made.name != name:
            self.fail(f"{where}, field 'name'", f"the derivative of {base!r} for arg {arg} is {made.name!r}, "
                                                f"not {name!r}")
        if not made.expr.free_symbols:
            self.fail(where, f"the derivative {name!r} is a constant, which no node computes")

    def sympy(self, text, where):
        self.text(text, where)
        try:
            return parse(text)
        except GraphError as e:
            self.fail(where, str(e))

    # -- graphs and nodes: every field checked first (check_graph), then built (build)

    def check_graph(self, spec, where, depth):
        """A graph's spec checked: everything but what only building can tell (arity, param values, shapes)."""
        if depth > self.limits.depth:
            self.fail(where, f"loop bodies nest more than {self.limits.depth} deep")
        self.fields(spec, where, ("name", "dtype", "nodes"))
        name = self.text(spec["name"], f"{where}, field 'name'", self.limits.name_chars)
        dtype = self.dtype(spec["dtype"], f"{where}, field 'dtype'", ("float16", "float32", "float64"))
        nodes = self.listing(spec["nodes"], f"{where}, field 'nodes'")
        self.nodes += len(nodes)
        if self.nodes > self.limits.nodes:
            self.fail(where, f"more than the limit of {self.limits.nodes} nodes in the file")
        prefix = "" if where == "graph" else f"{where}: "
        plans = {}
        for i, node in enumerate(nodes):
            plan = self.check_node(node, f"{prefix}nodes[{i}]", depth, plans)
            plans[plan.name] = plan
        for plan in plans.values():
            if plan.total_of is not None and plan.total_of not in plans:
                self.fail(f"{plan.where}, field 'total_of'", f"{_short(plan.total_of)} is not a node of the graph")
        return _GraphPlan(name, dtype, list(plans.values()))

    def check_node(self, node, where, depth, earlier):
        if isinstance(node, dict) and isinstance(node.get("name"), str):
            where = f"node {_short(node['name'])} ({where})"
        self.fields(node, where, ("name", "op", "args", "params", "shape", "dtype"),
                    ("outputs", "note", "temp", "named", "total_of"))
        name = self.text(node["name"], f"{where}, field 'name'", self.limits.name_chars)
        if name in earlier:
            self.fail(f"{where}, field 'name'", "the name is used by an earlier node; names are unique")
        op = self.text(node["op"], f"{where}, field 'op'", self.limits.name_chars)
        if op not in OPS and op not in self.defined:
            self.fail(f"{where}, field 'op'", f"unknown op {op!r} (neither registered nor defined in field 'ops')")
        args = self.listing(node["args"], f"{where}, field 'args'", 10_000)
        for k, a in enumerate(args):
            self.text(a, f"{where}, field 'args[{k}]'", self.limits.name_chars)
            if a not in earlier:
                self.fail(f"{where}, field 'args[{k}]'", f"{_short(a)} is not an earlier node (args name nodes "
                                                         "listed before the node, so a graph file has no cycles)")
        params = node["params"]
        if not isinstance(params, dict):
            self.fail(f"{where}, field 'params'", f"expected a JSON object, got {_kind(params)}")
        params = {k: self.value(v, f"{where}, field 'params.{_key(k)}'", depth) for k, v in params.items()}
        outputs = None
        if "outputs" in node:
            outputs = []
            for k, pair in enumerate(self.listing(node["outputs"], f"{where}, field 'outputs'", 10_000)):
                at = f"{where}, field 'outputs[{k}]'"
                if not isinstance(pair, list) or len(pair) != 2:
                    self.fail(at, f"expected [shape, dtype], got {_kind(pair)}")
                outputs.append((self.shape(pair[0], at + "[0]"), self.dtype(pair[1], at + "[1]", DTYPES)))
            outputs = tuple(outputs)
        total_of = node.get("total_of")
        if total_of is not None:
            self.text(total_of, f"{where}, field 'total_of'", self.limits.name_chars)
        return _NodePlan(where, name, op, tuple(args), params, self.shape(node["shape"], f"{where}, field 'shape'"),
                         self.dtype(node["dtype"], f"{where}, field 'dtype'", NODE_DTYPES), outputs,
                         self.text(node.get("note"), f"{where}, field 'note'", none=True),
                         self.flag(node.get("temp", False), f"{where}, field 'temp'"),
                         self.flag(node.get("named", True), f"{where}, field 'named'"), total_of)

    def build(self, plan):
        """The Graph of a checked plan, each node re-applied and its shape and dtype re-inferred."""
        g = Graph(plan.name, plan.dtype)
        known = _Anonymous()
        for node in plan.nodes:
            self.build_node(g, node, known)
            known.add(g.nx.nodes[node.name])
        for node in plan.nodes:
            if node.total_of is not None:
                g.nx.nodes[node.name]["total_of"] = g.nx.nodes[node.total_of]["index"]
        g._anonymous = itertools.count(known.top + 1)    # None dims given after loading are new dims
        return g

    def build_node(self, g, node, known):
        where, op = node.where, node.op
        # NOTE: an op that makes new free dims (a slice of a free dim) numbers them from the graph's counter:
        # give it the numbers the file has for them, so the node re-infers the shape it was saved with
        fresh = sorted({int(d[1:]) for d in (*node.shape, *(d for s, _ in node.outputs or () for d in s))
                        if is_anonymous(d) and d not in known.seen})
        g._anonymous = itertools.chain(fresh, itertools.count(max([known.top, *fresh]) + 1))
        try:
            g.apply(op, tuple(g[a] for a in node.args), self.materialize(node.params), node.name)
        except GraphError as e:
            self.fail(where, f"{type(e).__name__}: {e}")
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError, AttributeError, OverflowError) as e:
            # NOTE: ops check params that Python code built; a file can hold any JSON, so say which node it was
            self.fail(f"{where}, field 'params'", f"op {op!r} cannot take these params: {type(e).__name__}: {e}")
        attrs = g.nx.nodes[node.name]
        if attrs["shape"] != node.shape:
            self.fail(f"{where}, field 'shape'", f"the file says {_dims_text(node.shape)}, but {op} infers "
                                                 f"{_dims_text(attrs['shape'])} from its args and params")
        if attrs["dtype"] != node.dtype:
            self.fail(f"{where}, field 'dtype'", f"the file says {node.dtype}, but {op} infers {attrs['dtype']}")
        if attrs.get("outputs") != node.outputs:
            self.fail(f"{where}, field 'outputs'", f"the file says {_outputs_text(node.outputs)}, but {op} infers "
                                                   f"{_outputs_text(attrs.get('outputs'))}")
        attrs.update(note=node.note, temp=node.temp, named=node.named)

    def materialize(self, value):
        """Params with each checked loop body built into an ``op.Body``."""
        if isinstance(value, dict):
            return {k: self.materialize(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return type(value)(self.materialize(v) for v in value)
        if isinstance(value, _BodyPlan):
            return Body(self.build(value.graph), value.inputs, value.output, value.doc)
        return value

    def shape(self, value, where):
        dims = self.listing(value, where, self.limits.ndim)
        out = []
        for k, d in enumerate(dims):
            if isinstance(d, int) and not isinstance(d, bool):
                if not 0 <= d <= self.limits.dim:
                    self.fail(f"{where}[{k}]", f"dim {d} is outside 0..{self.limits.dim}")
            elif isinstance(d, str):
                if len(d) > self.limits.name_chars or not (d.isidentifier() or _ANONYMOUS.fullmatch(d)):
                    self.fail(f"{where}[{k}]", f"free dim {_short(d)} is neither a name (an identifier) "
                                               "nor an anonymous dim ('?' and digits)")
            else:
                self.fail(f"{where}[{k}]", f"expected an int or a free dim name, got {_kind(d)}")
            out.append(d)
        return tuple(out)

    def dtype(self, value, where, allowed):
        if value not in allowed or not isinstance(value, str):
            self.fail(where, f"expected a dtype name ({', '.join(allowed)}), got {_short(value)}")
        return value

    def value(self, v, where, depth):
        """A param from its JSON (see ``_encode``)."""
        if depth > self.limits.depth:
            self.fail(where, f"params nest more than {self.limits.depth} deep")
        if v is None or isinstance(v, (bool, int, float)):
            return v
        if isinstance(v, str):
            return self.text(v, where)
        if isinstance(v, list):
            return tuple(self.value(x, f"{where}[{k}]", depth + 1) for k, x in enumerate(v))
        if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in _TAGS:
            self.fail(where, f"expected a number, string, null, array or an object with one of the keys "
                             f"{', '.join(_TAGS)}, got {_short(v)}")
        (tag, body), = v.items()
        at = f"{where}.{tag}"
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                self.fail(at, f"expected 'nan', 'inf' or '-inf', got {_short(body)}")
            return float(body)
        if tag == "list":
            return [self.value(x, f"{at}[{k}]", depth + 1) for k, x in enumerate(self.listing(body, at))]
        if tag == "array":
            return self.array(body, at)
        if tag == "scalar":
            array = self.array(body, at)
            if array.ndim:
                self.fail(at, f"a scalar has shape [], got {list(array.shape)}")
            return array[()]
        if tag == "dtype":
            return np.dtype(self.dtype(body, at, DTYPES))
        return self.body(body, at, depth)

    def array(self, spec, where):
        self.fields(spec, where, ("dtype", "shape"), ("data", "base64"))
        dtype = np.dtype(self.dtype(spec["dtype"], f"{where}.dtype", DTYPES))
        shape = self.shape(spec["shape"], f"{where}.shape")
        if any(isinstance(d, str) for d in shape):
            self.fail(f"{where}.shape", "an array has static dims")
        size = math.prod(shape)
        self.constant_bytes += size * dtype.itemsize
        if self.constant_bytes > self.limits.constant_bytes:
            self.fail(where, f"array constants take more than the limit of {self.limits.constant_bytes} bytes")
        if ("data" in spec) == ("base64" in spec):
            self.fail(where, "expected exactly one of the fields 'data' and 'base64'")
        if "data" in spec:
            data = self.listing(spec["data"], f"{where}.data")
            if len(data) != size:
                self.fail(f"{where}.data", f"{len(data)} entries for shape {list(shape)} ({size} entries)")
            for k, x in enumerate(data):
                if not _fits(x, dtype):
                    self.fail(f"{where}.data[{k}]", f"{_short(x)} is not a {dtype.name} value")
            return np.array(data, dtype=dtype).reshape(shape)
        text = self.text(spec["base64"], f"{where}.base64", 4 * self.limits.constant_bytes // 3 + 4)
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            self.fail(f"{where}.base64", "not base64 text")
        if len(raw) != size * dtype.itemsize:
            self.fail(f"{where}.base64", f"{len(raw)} bytes for shape {list(shape)} of {dtype.name} "
                                         f"({size * dtype.itemsize} bytes)")
        return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(shape)

    def body(self, spec, where, depth):
        self.fields(spec, where, ("graph", "inputs", "output", "doc"))
        graph = self.check_graph(spec["graph"], f"{where}.graph", depth + 1)
        names = {n.name for n in graph.nodes}
        leaves = [n.name for n in graph.nodes if n.op in OPS and OPS[n.op].leaf]
        inputs = []
        for k, n in enumerate(self.listing(spec["inputs"], f"{where}.inputs")):
            if not isinstance(n, str) or n not in leaves or n in inputs:
                self.fail(f"{where}.inputs[{k}]", f"{_short(n)} is not a leaf of the body listed once")
            inputs.append(n)
        missing = [n for n in leaves if n not in inputs]
        if missing:      # its generated function would read a name nothing gives it
            self.fail(f"{where}.inputs", f"the body's leaf {_short(missing[0])} is not among its inputs")
        output = spec["output"]
        for n in output if isinstance(output, list) else [output]:
            if not isinstance(n, str) or n not in names:
                self.fail(f"{where}.output", f"{_short(n)} is not a node of the body")
        output = tuple(output) if isinstance(output, list) else output
        return _BodyPlan(graph, tuple(inputs), output, self.text(spec["doc"], f"{where}.doc"))

    # -- values

    def values_name(self, name):
        """The side .npz a file names, checked to be a plain file name (no directory, no '..')."""
        if name is not None:
            self.text(name, "field 'values'", 255)
            if os.path.basename(name) != name or name in (".", "..") or "\\" in name or not name.endswith(".npz"):
                self.fail("field 'values'", f"expected the plain name of an .npz file beside the graph file, got "
                                            f"{_short(name)}")
        return name

    def values(self, name, graph, directory):
        if name is None:
            return {}
        where = "field 'values'"
        path = os.path.join(directory or ".", name)
        try:
            with np.load(path, allow_pickle=False) as npz:
                size = sum(info.file_size for info in npz.zip.infolist())
                if size > self.limits.values_bytes:
                    self.fail(where, f"{name!r} holds {size} bytes, more than the limit of {self.limits.values_bytes}")
                arrays = {k: npz[k] for k in npz.files}
        except OSError as e:
            self.fail(where, f"cannot read {name!r}: {e.strerror or e}")
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            self.fail(where, f"{name!r} is not an .npz of plain arrays: {e}")
        try:
            return _check_values(graph, arrays, f"{name!r}")
        except GraphFileError as e:
            self.fail(where, str(e))


@dataclasses.dataclass(frozen=True)
class _NodePlan:
    """A node of a graph file, checked, not yet built."""

    where: str
    name: str
    op: str
    args: tuple
    params: dict
    shape: tuple
    dtype: str
    outputs: tuple | None
    note: str | None
    temp: bool
    named: bool
    total_of: str | None


@dataclasses.dataclass(frozen=True)
class _GraphPlan:
    name: str
    dtype: str
    nodes: list


@dataclasses.dataclass(frozen=True)
class _BodyPlan:
    graph: _GraphPlan
    inputs: tuple
    output: object
    doc: str


class _Anonymous:
    """The anonymous free dims (``?k``) of the nodes of a graph built so far, and the largest k."""

    def __init__(self):
        self.seen = set()
        self.top = -1

    def add(self, attrs):
        for d in _dims(attrs):
            if is_anonymous(d) and d not in self.seen:
                self.seen.add(d)
                self.top = max(self.top, int(d[1:]))


def _dims(attrs):
    yield from attrs["shape"]
    for shape, _ in attrs.get("outputs", ()):
        yield from shape


def _fits(x, dtype):
    if dtype.kind == "b":
        return isinstance(x, bool)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return isinstance(x, int) and info.min <= x <= info.max
    return isinstance(x, numbers.Real)


def _kind(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value, limit=60):
    if isinstance(value, (dict, list)):
        return _kind(value)
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _key(key):
    return key if key.isidentifier() else repr(key)


def _dims_text(shape):
    """A shape with its free dims by name (``(?0, 32)``): which anonymous dim matters here."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _outputs_text(outputs):
    if outputs is None:
        return "one output"
    return "(" + ", ".join(f"{_dims_text(s)} {d}" for s, d in outputs) + ")"
