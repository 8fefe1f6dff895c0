"""Graph, Tensor handles, naming and operator overloading; imports errors, shapes and op.

The graph is stored in ``Graph.nx``, a ``networkx.DiGraph`` keyed by node
name. Each node carries ``op`` (registry key), ``shape``, ``dtype``,
``args`` (ordered argument names: a DiGraph keeps one edge per pair, so
``x * x`` needs them on the node), ``params`` and ``index`` (creation order,
which is a topological order). Each edge carries ``positions``, the argument
slots the source fills.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import itertools

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .errors import DTypeError, GraphError, NameConflictError, OpError, ShapeError, UnknownNodeError
from .op import OPS, Op
from .shapes import format_shape, is_anonymous, is_free, normalize_shape, unifying


Shape = "tuple[int | str | None, ...] | int | str | None"
TensorLike = "Tensor | ArrayLike"


class Graph:
    """A computational graph of named op nodes.

    Args:
        name: shown in generated modules and reports.
        dtype: default dtype of float inputs, params and constants
            ("float64" or "float32").

    Example:
        >>> g = gc.Graph("mlp")
        >>> x = g.input("x", (None, 4))
        >>> W = g.param("W", (4, 2))
        >>> h = gc.relu(x @ W, name="h")
        >>> h.shape, g.nx.nodes["h"]["args"]
        (('?0', 2), ('matmul',))
    """

    def __init__(self, name="graph", dtype="float64", *, within=None):
        """``within``: a graph whose nodes' shapes this one copies (a loop body, a copy in another dtype):
        the free dims both create come from one numbering, so a new dim never takes a copied dim's name."""
        self.name = name
        self.dtype = dtype_name(dtype, f"graph {name!r}")
        self.nx = nx.DiGraph(name=name)
        self._count = 0
        self._names = {}     # node id (its creation index) -> current name; Tensors hold the id
        self._autonames = {}
        self._note = None
        self._temps = 0
        self._anonymous = itertools.count() if within is None else within._anonymous   # numbers new free dims
        self._dims = {}      # free dim -> the dim it was unified with (a union-find forest)
        self._grads = {}     # (y id, seed id, prefix) -> {node id: gradient node id}, so grad reuses them

    def __repr__(self):
        return f"Graph({self.name!r}, {self.nx.number_of_nodes()} nodes)"

    def _repr_svg_(self):
        """The graph and its gradients as an SVG picture in notebooks; None without Graphviz, so
        Jupyter shows the repr instead."""
        from .viz import svg    # NOTE: imported here: viz draws graphs, so it sits above graph.py
        return svg(self)

    def __contains__(self, name):
        return name in self.nx

    def __getitem__(self, name: str) -> "Tensor":
        if name not in self.nx:
            raise UnknownNodeError(f"graph {self.name!r} has no node {name!r}")
        return Tensor(self, self.nx.nodes[name]["index"])

    def input(self, name: str, shape: Shape, dtype: DTypeLike | None = None) -> "Tensor":
        """Declare a value fed at run time (data, labels).

        Args:
            name: unique node name.
            shape: ints, names of free dims (``"batch"``) or ``None`` (a free
                dim of its own).
            dtype: NumPy dtype name; defaults to the graph's dtype.

        Returns:
            Tensor: the input node.

        Raises:
            NameConflictError: the name is taken.
            ShapeError: a dim is not an int, a name or None.
        """
        return self._leaf("input", name, shape, dtype)

    def param(self, name: str, shape: Shape, dtype: DTypeLike | None = None) -> "Tensor":
        """Declare a trainable parameter (a leaf fed at run time); see ``input``."""
        return self._leaf("param", name, shape, dtype)

    def constant(self, value: ArrayLike, dtype: DTypeLike | None = None, name: str | None = None) -> "Tensor":
        """Add a constant node.

        A Python number (or one whose ``dtype`` is what Python's own would be:
        float64, int64, bool) stays a Python scalar, weakly typed as in
        NumPy 2: ``x * 2.0`` keeps the dtype of ``x``. NumPy scalars and
        arrays keep their dtype.

        Raises:
            DTypeError: the value is not numbers or bools (None, strings,
                ragged lists) or the dtype is unknown.
        """
        what = f"constant {name!r}" if name else "constant"
        try:
            array = np.asarray(value, dtype=None if dtype is None else np.dtype(dtype))
        except (TypeError, ValueError) as e:
            raise DTypeError(f"{what}: cannot use {value!r} ({e})") from None
        if array.dtype.kind not in "biuf":
            raise DTypeError(f"{what}: {value!r} is not numbers or bools (dtype {array.dtype})")
        python_scalar = array.ndim == 0 and not isinstance(value, (np.ndarray, np.generic))
        if python_scalar and array.dtype == np.asarray(array.item()).dtype:
            value = array.item()
        else:
            value = array
        return self.apply("constant", (), {"value": value, "dtype": array.dtype.name}, name)

    @property
    def inputs(self):
        """Input nodes in declaration order."""
        return [self[n] for n, op in self.nx.nodes(data="op") if op == "input"]

    @property
    def params(self):
        """Param nodes in declaration order."""
        return [self[n] for n, op in self.nx.nodes(data="op") if op == "param"]

    def _leaf(self, op, name, shape, dtype):
        if not isinstance(name, str):
            raise GraphError(f"{op} name must be a str, got {name!r}")
        shape = normalize_shape(shape, f"{op} {name!r}", self.free_dim)
        dtype = self._dtype(dtype, f"{op} {name!r}")
        return self.apply(op, (), {"shape": shape, "dtype": dtype}, name)

    def free_dim(self):
        """A new anonymous free dim (what ``None`` in a shape becomes)."""
        return f"?{next(self._anonymous)}"

    def _dtype(self, dtype, what):
        return dtype_name(self.dtype if dtype is None else dtype, what)

    def unique_name(self, base):
        """``base`` if free, else ``base_1``, ``base_2``, ... (deterministic)."""
        k = self._autonames.get(base, 0)
        name = base if k == 0 else f"{base}_{k}"
        while name in self.nx:
            k += 1
            name = f"{base}_{k}"
        self._autonames[base] = k + 1
        return name

    def _temp_name(self):
        """``_t0``, ``_t1``, ...: names of the intermediate nodes grad builds."""
        while True:
            name = f"_t{self._temps}"
            self._temps += 1
            if name not in self.nx:
                return name

    @contextlib.contextmanager
    def noting(self, note):
        """Tag every node added inside the block with ``note`` (used by grad)."""
        saved, self._note = self._note, note
        try:
            yield
        finally:
            self._note = saved

    def apply(self, op_name, args, params, name=None):
        """Add a node computing ``op_name(*args, **params)``; return its Tensor.

        This is the one way nodes enter the graph: it checks names, asks the
        op to normalize params and infer shape and dtype, and records args and
        the free dims that inference unified.
        """
        op = OPS.get(op_name)
        if op is None:
            raise GraphError(f"unknown op {op_name!r}")
        for a in args:
            if a.graph is not self:
                raise GraphError(f"{op_name}: argument {a.name!r} belongs to graph "
                                 f"{a.graph.name!r}, not {self.name!r}")
        if name is not None and not isinstance(name, str):
            raise GraphError(f"node name must be a str, got {name!r}")
        if name in self.nx:
            raise NameConflictError(f"node name {name!r} is already used by a "
                                    f"{self.nx.nodes[name]['op']} node in graph {self.name!r}")
        label = op_name if name is None else f"node {name!r} ({op_name})"
        problem = arity(op).mismatch(len(args), params)
        if problem:
            raise OpError(f"{label}: {problem}")
        try:
            params = op.normalize(*args, **params)
        except GraphError as e:
            raise type(e)(f"{label}: {e}") from None
        temp = name is None and self._note is not None
        named = name is not None
        if name is None:
            try:
                found = op.simplify(*args, **params)
            except GraphError as e:
                raise type(e)(f"{label}: {e}") from None
            if found is not None:
                return found
            name = self._temp_name() if temp else self.unique_name(op_name)
        try:
            with unifying() as unified:
                inferred = op.infer(*args, **params)
            outputs = tuple((tuple(s), d) for s, d in inferred) if op.several else None
            shape, dtype = ((), "object") if op.several else inferred
            for a, b in unified:
                self._unify(a, b)
        except GraphError as e:
            raise type(e)(f"node {name!r} ({op_name}): {e}") from None
        index = self._count
        self.nx.add_node(name, op=op_name, shape=tuple(shape), dtype=dtype,
                         args=tuple(a.name for a in args), params=params,
                         weak=shape == () and op.weak(**params), index=index, note=self._note, temp=temp,
                         named=named, **({"outputs": outputs} if op.several else {}))
        self._count += 1
        self._names[index] = name
        for pos, a in enumerate(args):
            if self.nx.has_edge(a.name, name):
                self.nx.edges[a.name, name]["positions"].append(pos)
            else:
                self.nx.add_edge(a.name, name, positions=[pos])
        return Tensor(self, index)

    def rename(self, old, new):
        """Rename a node, and the args of the nodes that use it (grad names its results ``d_<x>``).

        Tensors of the node follow: they hold its id, not its name. Costs the
        node's degree (``nx.relabel_nodes`` scans the whole graph).
        """
        if new in self.nx:
            raise NameConflictError(f"node name {new!r} is already used in graph {self.name!r}")
        g = self.nx
        g.add_node(new, **g.nodes[old])
        g.add_edges_from((src, new, data) for src, _, data in g.in_edges(old, data=True))
        g.add_edges_from((new, dst, data) for _, dst, data in g.out_edges(old, data=True))
        for user in g.successors(old):
            g.nodes[user]["args"] = tuple(new if a == old else a for a in g.nodes[user]["args"])
        g.remove_node(old)
        g.nodes[new]["temp"] = False
        self._names[g.nodes[new]["index"]] = new
        return self[new]

    def remove(self, names):
        """Drop nodes that nothing uses any more (grad prunes the VJP parts it did not need)."""
        for n in names:
            del self._names[self.nx.nodes[n]["index"]]
        self.nx.remove_nodes_from(names)

    def dim(self, dim):
        """The dim that ``dim`` was unified with while the graph was built: a static size, a
        named free dim, or an anonymous free dim standing for its class (itself if none)."""
        root = dim
        while root in self._dims:
            root = self._dims[root]
        return root

    def _unify(self, a, b):
        """Record that free dims ``a`` and ``b`` (or a free dim and a size) must be equal."""
        a, b = self.dim(a), self.dim(b)
        if a == b:
            return
        if not is_free(a) and not is_free(b):
            raise ShapeError(f"a free dim was taken to be both {a} and {b} while building graph "
                             f"{self.name!r}")
        # the root is the most telling member: a size, then a named dim, then an anonymous one
        root, other = sorted((a, b), key=lambda d: 0 if not is_free(d) else 1 + is_anonymous(d))
        self._dims[other] = root

    def lift(self, value):
        """A Tensor for ``value``: Tensors pass through, anything else becomes a constant."""
        if isinstance(value, Tensor):
            return value
        return self.constant(value)

    def upstream(self, names):
        """The given node names and every node they depend on.

        One traversal for all of them (``nx.ancestors`` takes one source at a
        time, which would make compiling many gradients quadratic).
        """
        pred = self.nx.pred
        seen = set(names)
        stack = list(seen)
        while stack:
            for p in pred[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    def order(self, names):
        """Sort node names into creation order (a topological order)."""
        index = self.nx.nodes
        return sorted(names, key=lambda n: index[n]["index"])


class Tensor:
    """A handle on one node of a Graph, with NumPy-like operators.

    ``a + b``, ``a * 2``, ``x @ W``, ``-a``, ``a ** 2``, ``abs(a)``, ``a.T``,
    ``a.sum(axis)``, ``a.mean(axis)``, ``a.max(axis)``, ``a.reshape(shape)`` and
    static slicing ``a[:, 1:5]``, ``a[..., ::2]``, ``a[0]`` add nodes to the graph and return new Tensors.
    """

    __slots__ = ("graph", "id")
    __iter__ = None      # __getitem__ slices; a Tensor's length is only known when the graph runs
    # NOTE: NumPy defers to our reflected operators: ndarray + Tensor is a Tensor, not an object array
    __array_ufunc__ = None

    def __init__(self, graph, id):   # noqa: A002 - the node's creation index
        self.graph = graph
        self.id = id

    @property
    def name(self):
        """The node's name (grad may rename a node it built; the handle follows)."""
        try:
            return self.graph._names[self.id]
        except KeyError:
            raise UnknownNodeError(f"node #{self.id} of graph {self.graph.name!r} was removed") from None

    @property
    def _attrs(self):
        return self.graph.nx.nodes[self.name]

    @property
    def op(self):
        """Registry key of the node's op."""
        return self._attrs["op"]

    @property
    def shape(self):
        """Output shape: ints and free-dim names."""
        return self._attrs["shape"]

    @property
    def dtype(self):
        """Output dtype name, e.g. ``"float64"``."""
        return self._attrs["dtype"]

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def params(self):
        """The op's params (axes, exponent, ...)."""
        return self._attrs["params"]

    @property
    def args(self):
        """Argument Tensors, in order."""
        return tuple(self.graph[a] for a in self._attrs["args"])

    @property
    def weak(self):
        """A Python scalar at run time, so weakly typed (see ``Graph.constant``)."""
        return self._attrs["weak"]

    @property
    def outputs(self):
        """``((shape, dtype), ...)`` of a node with several outputs (see ``Op.several``)."""
        return self._attrs["outputs"]

    def __getitem__(self, index):
        return self.graph.apply("slice", (self,), {"index": index})

    @property
    def value(self):
        """The value of a constant node."""
        return self.params["value"]

    def __repr__(self):
        return (f"<Tensor {self.name!r} = {self.op}, shape {format_shape(self.shape)}, "
                f"{self.dtype}>")

    def __eq__(self, other):
        return isinstance(other, Tensor) and other.graph is self.graph and other.id == self.id

    def __hash__(self):
        return hash((id(self.graph), self.id))

    def __bool__(self):
        raise GraphError(f"the truth value of Tensor {self.name!r} is only known when the graph runs; "
                         "use gc.where, gc.maximum or gc.minimum instead of if, and, or, max, min")

    def _binary(self, op_name, other, reflected=False):
        other = self.graph.lift(other)
        args = (other, self) if reflected else (self, other)
        return self.graph.apply(op_name, args, {})

    def __add__(self, other):
        return self._binary("add", other)

    def __radd__(self, other):
        return self._binary("add", other, True)

    def __sub__(self, other):
        return self._binary("sub", other)

    def __rsub__(self, other):
        return self._binary("sub", other, True)

    def __mul__(self, other):
        return self._binary("mul", other)

    def __rmul__(self, other):
        return self._binary("mul", other, True)

    def __truediv__(self, other):
        return self._binary("div", other)

    def __rtruediv__(self, other):
        return self._binary("div", other, True)

    def __matmul__(self, other):
        return self._binary("matmul", other)

    def __rmatmul__(self, other):
        return self._binary("matmul", other, True)

    def __gt__(self, other):
        return self._binary("greater", other)

    def __lt__(self, other):
        return self._binary("less", other)

    def __neg__(self):
        return self.graph.apply("neg", (self,), {})

    def __abs__(self):
        return self.graph.apply("abs", (self,), {})

    def __pow__(self, exponent):
        return self.graph.apply("pow", (self,), {"exponent": exponent})

    @property
    def T(self):
        return self.graph.apply("transpose", (self,), {"axes": None})

    def sum(self, axis=None, keepdims=False):
        return self.graph.apply("sum", (self,), {"axis": axis, "keepdims": keepdims})

    def mean(self, axis=None, keepdims=False):
        return self.graph.apply("mean", (self,), {"axis": axis, "keepdims": keepdims})

    def max(self, axis=None, keepdims=False):
        return self.graph.apply("max", (self,), {"axis": axis, "keepdims": keepdims})

    def reshape(self, shape):
        return self.graph.apply("reshape", (self,), {"shape": shape})


def apply(op_name, args, params, name=None):
    """Add ``op_name(*args, **params)`` to the graph of the first Tensor in ``args``.

    Numbers and arrays among ``args`` become constants in that graph.
    """
    graph = next((a.graph for a in args if isinstance(a, Tensor)), None)
    if graph is None:
        raise GraphError(f"{op_name}: at least one argument must be a graphcomp Tensor, "
                         f"got {tuple(type(a).__name__ for a in args)}")
    return graph.apply(op_name, tuple(graph.lift(a) for a in args), params, name)


class _Arity:
    """How many args and which params an op takes, read once from its signature."""

    def __init__(self, signature):
        params = list(signature.parameters.values())
        self.signature = signature
        self.tensors = [p.name for p in params if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
        self.variadic = next((p.name for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL), None)
        self.args = len(self.tensors)
        self.keyword = [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
        self.allowed = {p.name for p in self.keyword}
        self.required = {p.name for p in self.keyword if p.default is inspect.Parameter.empty}

    def mismatch(self, n_args, params):
        """Why ``n_args`` args and ``params`` do not fit, or "" if they do."""
        if n_args != self.args and not (self.variadic and n_args >= self.args):
            return f"takes {self.args} tensor argument(s), got {n_args}"
        unknown = sorted(set(params) - self.allowed)
        if unknown:
            return f"unknown param {unknown[0]!r} (takes {sorted(self.allowed)})"
        missing = sorted(self.required - set(params))
        return f"missing param {missing[0]!r}" if missing else ""


@functools.cache
def arity(op):
    """The args and params an op takes: its ``signature`` if it has one (an op whose arguments differ
    per definition, as ``gc.elementwise``'s do), else those of its ``normalize`` if it has one, else
    of ``infer``."""
    signature = getattr(op, "signature", None)
    if signature is None:
        signature = inspect.signature(op.normalize if type(op).normalize is not Op.normalize else op.infer)
    return _Arity(signature)


@functools.cache
def op_function(op):
    """The public function of a registered op, made from its class: ``gc.sum(x, axis=None,
    keepdims=False, *, name=None)``.

    Its tensor args come first, then the op's params (positional too, in the
    order the op declares them, unless the op takes any number of tensors),
    then ``name``. Numbers and arrays among the tensor args become constants.
    """
    shape = arity(op)
    P = inspect.Parameter
    params = [P(t, P.POSITIONAL_OR_KEYWORD, annotation=TensorLike) for t in shape.tensors]
    if shape.variadic:
        params.append(P(shape.variadic, P.VAR_POSITIONAL, annotation=TensorLike))
    positional = not shape.variadic
    for p in shape.keyword:
        positional = positional and (p.default is not P.empty or params[-1].default is P.empty)
        params.append(p.replace(kind=P.POSITIONAL_OR_KEYWORD if positional else P.KEYWORD_ONLY))
    params.append(P("name", P.KEYWORD_ONLY, default=None, annotation="str | None"))
    signature = inspect.Signature(params, return_annotation="Tensor")

    def function(*args, **kwargs):
        values = signature.bind(*args, **kwargs).arguments
        name = values.pop("name", None)
        tensors = tuple(values.pop(t) for t in shape.tensors) + tuple(values.pop(shape.variadic, ()))
        return apply(op.name, tensors, values, name)

    function.__name__ = function.__qualname__ = op.name
    function.__module__ = "graphcomp"
    function.__doc__ = type(op).__doc__
    function.__signature__ = signature
    function.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not P.empty}
    function.__annotations__["return"] = "Tensor"
    return function


class _OpFunctions:
    """``F.<op>(...)``: the function of each registered op, for code that builds nodes (VJPs)."""

    def __getattr__(self, name):
        op = OPS.get(name)
        if op is None:
            raise AttributeError(f"no op {name!r} is registered")
        return op_function(op)


F = _OpFunctions()


def dtype_name(dtype, what):
    """The NumPy name of ``dtype``; DTypeError naming ``what`` if it is none."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise DTypeError(f"{what}: {dtype!r} is not a NumPy dtype") from None
