"""compile / compile_training: generated modules wrapped with feed checks; imports graph, autodiff and codegen."""
import builtins
import linecache
import os
import tempfile
import traceback
import types

import numpy as np

from ..autodiff import grad, reverse
from ..errors import FeedError, GraphError
from ..graph import Tensor
from ..op import OPS
from ..shapes import format_shape, is_anonymous, is_free
from .emit import Emitter, leaves, needed
from .ir import Assign, Attr, AugAssign, BinOp, Const, FunctionDef, Index, Module, Name, Return, Tuple
from .names import Namer
from .printer import NumpyPrinter


def compile(outputs):   # noqa: A001 - public name from the spec
    """Compile the nodes ``outputs`` into a NumPy function of every input and param they need.

    Args:
        outputs: a Tensor or a list of Tensors of one graph.

    Returns:
        Compiled: call it with one keyword argument per needed input/param
        (``f(x=X, W=w)``); it returns a tuple of arrays (one array if
        ``outputs`` was a single Tensor). ``.source`` is the generated module,
        ``.save(path)`` writes it.

    Raises:
        GraphError: outputs of different graphs, or a cycle in the graph.

    Example:
        >>> f = compile([loss, dW])
        >>> loss_value, dW_value = f(x=X, W=w)
    """
    single = isinstance(outputs, Tensor)
    outs = [outputs] if single else outputs
    graph = _graph_of(outs)
    nodes = needed(graph, [o.name for o in outs])
    fed = leaves(graph, nodes)
    name = Namer()
    emitter = Emitter(graph, name)
    body = emitter.statements(nodes, keep=[o.name for o in outs])
    results = tuple(emitter.output(o.name) for o in outs)
    body.append(Return(results[0] if single else Tuple(results)))
    run = FunctionDef("run", tuple(name(n) for n in fed), tuple(body),
                      f"Compute {', '.join(o.name for o in outs)} of graph {graph.name!r}.")
    module = Module(_module_doc(graph, "computes the outputs listed in OUTPUTS with run()"),
                    ("numpy as np",),
                    (_constants({"INPUTS": _specs(graph, fed), "OUTPUTS": tuple(o.name for o in outs)}),
                     *emitter.helper_sources(), run))
    return Compiled(graph, NumpyPrinter().print(module), fed, [o.name for o in outs])


def compile_training(loss, params):
    """Compile forward, backward and an SGD training step for scalar ``loss``.

    Adds the gradient nodes ``d_<param>`` to the graph (as ``grad`` does).

    Args:
        loss: scalar Tensor to minimize.
        params: list of param Tensors to train; every other fed node that
            ``loss`` needs is a data input of the generated functions.

    Returns:
        TrainingStep with ``forward``, ``backward``, ``train_step``,
        ``source`` and ``save``.

    Raises:
        GradientError: ``loss`` is not a scalar or a param is not a float.
        GraphError: a param is not a fed node, or an input is named
            ``params`` or ``lr`` (train_step's own arguments).
    """
    params = list(params)
    graph = _graph_of([loss, *params])
    for p in params:
        if not OPS[p.op].leaf:
            raise GraphError(f"compile_training: {p.name!r} is a {p.op} node; only fed nodes "
                             "(params, inputs) can be trained")
    grads = grad(loss, params)
    # NOTE: every VJP is linear in its cotangent, so seeding the chain rule with lr
    # instead of 1 gives lr * gradient at no extra cost (it scales the first scalar
    # term); train_step then updates with W -= step_W: one array op per param, not two.
    lr = _learning_rate(graph, loss.dtype)
    steps = reverse(loss, params, seed=lr, prefix="step_")
    forward_nodes = needed(graph, [loss.name])
    forward_set = set(forward_nodes)
    param_names = [p.name for p in params]
    backward_nodes = [n for n in needed(graph, [loss.name, *(g.name for g in grads)]) if n not in forward_set]
    step_nodes = [n for n in needed(graph, [loss.name, *(g.name for g in steps)]) if n not in forward_set]
    data = [n for n in leaves(graph, forward_nodes + backward_nodes) if n not in param_names]
    for n in data:
        if n in ("params", "lr"):
            raise GraphError(f"input {n!r}: the name is taken by train_step(params, ..., lr)")

    name = Namer({lr.name: "lr"})
    emitter = Emitter(graph, name)
    saved = graph.order({a for n in backward_nodes for a in graph.nx.nodes[n]["args"]
                         if a in forward_set and not OPS[graph.nx.nodes[a]["op"]].inline})
    fwd = emitter.statements(forward_nodes, keep=[loss.name, *saved])
    bwd = emitter.statements(backward_nodes, keep=[g.name for g in grads])
    step_body = emitter.statements(forward_nodes + step_nodes, keep=[loss.name, *(g.name for g in steps)])
    grad_refs = tuple(emitter.output(g.name) for g in grads)
    loss_ref = emitter.output(loss.name)
    args = tuple(name(n) for n in param_names + data)
    cache = Tuple(tuple(Name(name(n)) for n in saved))

    forward = FunctionDef("forward", args, (*fwd, Return(Tuple((loss_ref, cache)))),
                          f"Return {loss.name!r} and the cache backward() needs.")
    backward = FunctionDef(
        "backward", ("cache",),
        (*([Assign(cache, Name("cache"))] if saved else []), *bwd, Return(Tuple(grad_refs))),
        f"Return the gradients of {loss.name!r} for {', '.join(param_names)}, in PARAMS order.")
    load = [Assign(Name(name(p)), Index(Name("params"), Const(p))) for p in param_names]
    update = [AugAssign(Name(name(p)), "-", emitter.output(s.name), f"SGD step: {p} -= lr * d{loss.name}/d{p}")
              for p, s in zip(param_names, steps)]
    step = FunctionDef(
        "train_step", ("params", *(name(n) for n in data), "lr"),
        (*load, *step_body, *update, Return(loss_ref)),
        "One SGD step: forward, backward, then params[name] -= lr * gradient, in place.\n\n"
        "The backward pass is seeded with lr instead of 1, so each step_<node> is lr times\n"
        "the gradient. Returns the loss before the step.")
    module = Module(
        _module_doc(graph, "trains: forward(), backward() and train_step()"), ("numpy as np",),
        (_constants({"PARAMS": tuple(param_names), "INPUTS": _specs(graph, data)}),
         *emitter.helper_sources(), forward, backward, step))
    return TrainingStep(graph, NumpyPrinter().print(module), param_names, data)


def _learning_rate(graph, dtype):
    """The scalar input node standing for train_step's ``lr`` (one per graph and dtype)."""
    for node in graph.inputs:
        if node._attrs["note"] == "learning rate" and node.dtype == dtype:
            return node
    with graph.noting("learning rate"):
        return graph.input(graph.unique_name("lr"), (), dtype)


def _graph_of(tensors):
    if not isinstance(tensors, (list, tuple)):
        raise GraphError(f"expected a graphcomp Tensor or a list of them, got {type(tensors).__name__}")
    if not tensors:
        raise GraphError("nothing to compile: no outputs given")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise GraphError(f"expected graphcomp Tensors, got {type(t).__name__} {t!r}")
    graph = tensors[0].graph
    for t in tensors:
        if t.graph is not graph:
            raise GraphError(f"{t.name!r} belongs to graph {t.graph.name!r}, not {graph.name!r}")
    return graph


def _module_doc(graph, what):
    return (f"Generated by graphcomp from graph {graph.name!r}: {what}.\n\n"
            "Standalone: needs only NumPy. Regenerate it rather than editing it.")


def _specs(graph, names):
    """``((name, shape, dtype), ...)`` of fed nodes; anonymous free dims show as None."""
    return tuple((n, tuple(None if is_anonymous(d) else d for d in graph.nx.nodes[n]["shape"]),
                  graph.nx.nodes[n]["dtype"]) for n in names)


def _constants(values):
    return "\n".join(NumpyPrinter().print(Assign(Name(k), Const(v))) for k, v in values.items())


def _load(source, filename, env=()):
    """Execute generated source as a fresh module (with tracebacks that show its lines).

    ``env`` are globals the module finds already defined (objects that have no literal).
    """
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType("graphcomp_generated")
    module.__dict__.update(env)
    exec(builtins.compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own printed IR
    return module


class _Feeds:
    """Checks fed values against the declared shape and dtype of each fed node.

    ``fast`` is a generated straight-line check that returns the values when
    all is well (the common case, on every call) and None otherwise; ``check``
    then finds the fault and raises a FeedError naming it.
    """

    def __init__(self, graph, names, params=()):
        self.graph_name = graph.name
        self.specs = []
        for n in names:
            attrs = graph.nx.nodes[n]
            shape = attrs["shape"]
            self.specs.append((n, "param" if n in params else "feed", shape, np.dtype(attrs["dtype"]),
                               attrs["op"]))
        self.data = [n for n, source, *_ in self.specs if source == "feed"]
        self.fast = self._generate_fast()

    def _generate_fast(self):
        """Compile ``fast(params, feeds)``: the values in order if all fit, else a falsy value.

        It raises LookupError or TypeError for a missing value or a non-dict.
        """
        env = {"ndarray": np.ndarray}
        body, first_use = [], {}
        for k, (name, source, shape, dtype, _) in enumerate(self.specs):
            v = Name(f"v{k}")
            env[f"d{k}"] = dtype
            tests = [BinOp("is", Attr(v, "__class__"), Name("ndarray")),
                     BinOp("is", Attr(v, "dtype"), Name(f"d{k}"))]
            if not any(map(is_free, shape)):
                tests.append(BinOp("==", Attr(v, "shape"), Const(shape)))
            else:
                tests.append(BinOp("==", Attr(v, "ndim"), Const(len(shape))))
                for i, dim in enumerate(shape):
                    size = Index(Attr(v, "shape"), Const(i))
                    if not is_free(dim):
                        tests.append(BinOp("==", size, Const(dim)))
                    elif not is_anonymous(dim):
                        tests.append(BinOp("==", size, first_use.setdefault(dim, size)))
            ok = Name("ok") if k else tests.pop(0)
            for test in tests:
                ok = BinOp("and", ok, test)      # left-nested: prints flat
            body += [Assign(v, Index(Name(f"{source}s"), Const(name))), Assign(Name("ok"), ok)]
        values = Tuple(tuple(Name(f"v{k}") for k in range(len(self.specs))))
        result = BinOp("and", Name("ok"), values) if self.specs else values
        fast = FunctionDef("fast", ("params", "feeds"), (*body, Return(result)))
        source = NumpyPrinter().print(Module("Feed checks of compiled code.", (), (fast,)))
        return _load(source, f"<graphcomp feeds {self.graph_name}>", env).fast

    def check(self, feeds, params=None):
        """Return the fed arrays in order; raise FeedError naming the value at fault."""
        sources = {"feed": feeds, "param": params}
        for source, values in sources.items():
            if values is not None and not isinstance(values, dict):
                raise FeedError(f"{source}s must be a dict of name -> array, got {type(values).__name__}")
        values = []
        bound = {}
        for name, source, shape, dtype, op in self.specs:
            try:
                value = sources[source][name]
            except KeyError:
                raise FeedError(f"missing {source} for {op} {name!r} (shape {format_shape(shape)}, "
                                f"{dtype.name})") from None
            if value.__class__ is not np.ndarray:
                try:
                    value = np.asarray(value)
                except (TypeError, ValueError) as e:
                    raise FeedError(f"{source} {name!r}: not an array ({e})") from None
            if value.dtype != dtype:
                raise FeedError(f"{source} {name!r}: dtype {value.dtype.name}, expected {dtype.name}")
            got = value.shape
            if len(got) != len(shape) or any(not is_free(d) and d != n for d, n in zip(shape, got)):
                raise FeedError(f"{source} {name!r}: shape {got}, expected {format_shape(shape)}")
            for dim, size in zip(shape, got):
                if is_free(dim) and not is_anonymous(dim):
                    first = bound.setdefault(dim, (size, name))
                    if first[0] != size:
                        raise FeedError(f"{source} {name!r}: free dim {dim!r} is {size} here but "
                                        f"{first[0]} in {first[1]!r}")
            values.append(value)
        if len(feeds) != len(self.data):
            unknown = sorted(set(feeds) - set(self.data))
            raise FeedError(f"unknown feed {unknown[0]!r}: graph {self.graph_name!r} needs "
                            f"{sorted(self.data)}")
        return values

    def values(self, feeds, params=None):
        """The fed values in order: the generated check first, the thorough one if it fails."""
        try:
            found = self.fast(params, feeds)
        except (LookupError, TypeError):       # a missing value, or params that are no dict
            found = None
        if found and len(feeds) == len(self.data):
            return found
        return self.check(feeds, params)


class _Generated:
    """What every compiled object has: its source, saving and the loaded module."""

    def __init__(self, graph, source):
        self.graph = graph
        self.source = source
        self._filename = f"<graphcomp {graph.name}>"
        self.module = _load(source, self._filename)

    def _failed(self, error):
        """A FeedError naming the node whose statement raised ``error``, if generated code raised it."""
        lines = self.source.splitlines()
        for frame, lineno in traceback.walk_tb(error.__traceback__):
            if frame.f_code.co_filename == self._filename:
                comment = lines[lineno - 2].strip()     # the comment above each statement names its node
                if comment.startswith("# "):
                    node = comment[2:].split(" = ", 1)[0]
                    return FeedError(f"computing node {node} failed on the fed values: {error}")
        return None

    def save(self, path):
        """Write the generated module to ``path`` (atomically: a failed write leaves no half file).

        Returns:
            The path written, as a str.
        """
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graphcomp-", suffix=".py")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.source)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return path


class Compiled(_Generated):
    """A compiled function of a graph's outputs (see ``compile``)."""

    def __init__(self, graph, source, fed, outputs):
        super().__init__(graph, source)
        self.inputs = fed
        self.outputs = outputs
        self._feeds = _Feeds(graph, fed)
        self._run = self.module.run

    def __call__(self, **feeds):
        values = self._feeds.values(feeds)
        try:
            return self._run(*values)
        except (ValueError, IndexError) as e:
            raise self._failed(e) or e from e

    def __repr__(self):
        return f"<Compiled {self.outputs} of graph {self.graph.name!r}; inputs {self.inputs}>"


class TrainingStep(_Generated):
    """Forward, backward and SGD step of a loss (see ``compile_training``)."""

    def __init__(self, graph, source, params, data):
        super().__init__(graph, source)
        self.params = params
        self.inputs = data
        self._feeds = _Feeds(graph, params + data, params=set(params))
        self._train_step = self.module.train_step

    def forward(self, params, **feeds):
        """Run the forward pass. Returns ``(loss, cache)``; pass the cache to ``backward``."""
        values = self._feeds.values(feeds, params)
        try:
            return self.module.forward(*values)
        except (ValueError, IndexError) as e:
            raise self._failed(e) or e from e

    def backward(self, cache):
        """Gradients from a forward cache, as a dict param name -> array."""
        try:
            return dict(zip(self.params, self.module.backward(cache)))
        except (ValueError, IndexError) as e:
            raise self._failed(e) or e from e

    def train_step(self, params, *, lr, **feeds):
        """One SGD step: updates the arrays in ``params`` in place; returns the loss before it."""
        values = self._feeds.values(feeds, params)
        try:
            return self._train_step(params, *values[len(self.params):], lr)
        except (ValueError, IndexError) as e:
            raise self._failed(e) or e from e

    def __repr__(self):
        return f"<TrainingStep params {self.params}, inputs {self.inputs} of graph {self.graph.name!r}>"
