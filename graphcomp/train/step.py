"""compile_training: forward, backward and a training step as one generated module; imports graph, autodiff and codegen.

Without an optimizer the step is plain SGD with ``lr`` an argument (the original
API); with one, ``optimized.py`` writes the optimizer's update and its state.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..autodiff import grad, reverse
from ..codegen.compiled import (RUN_ERRORS, Feeds, constants, fed_bounds, graph_of, imports, module_doc, namer,
                                specs)
from ..codegen.emit import Emitter, leaves, needed
from ..codegen.ir import Assign, AugAssign, Const, FunctionDef, Index, Module, Name, Return, Tuple
from ..codegen.printer import NumpyPrinter
from ..collector import pausing
from ..errors import FeedError, GraphError
from ..graph import Tensor
from ..op import OPS
from .optim import Optimizer
from .optimized import OptimizerStep, compile_optimized, learning_rate
from .passes import Passes


@pausing
def compile_training(loss: Tensor, params: Sequence[Tensor],
                     optimizer: Optimizer | None = None) -> "TrainingStep | OptimizerStep":
    """Compile forward, backward and a training step for scalar ``loss``.

    Adds the gradient nodes ``d_<param>`` to the graph (as ``grad`` does).

    Args:
        loss: scalar Tensor to minimize.
        params: list of param Tensors to train; every other fed node that
            ``loss`` needs is a data input of the generated functions.
        optimizer: a ``gc.optim`` optimizer (``SGD``, ``Adam``, ``AdamW``,
            ``RMSprop``), written into the generated ``train_step`` with its
            state. None: plain SGD with the learning rate an argument,
            ``train_step(params, x=..., lr=0.1)``.

    Returns:
        Without an optimizer, a TrainingStep with ``forward``, ``backward``,
        ``train_step(params, *, lr, **feeds)``, ``source`` and ``save``. With
        one, an OptimizerStep with ``init_state(params)``,
        ``train_step(params, state, **feeds)``, ``forward``, ``backward``,
        ``predict`` (for a classification loss), ``source`` and ``save``.

    Raises:
        GradientError: ``loss`` is not a scalar or a param is not a float.
        GraphError: a param is not a fed node or is listed twice, an input
            is named after train_step's own arguments (``params`` and ``lr``,
            or ``params`` and ``state``), the optimizer is not one, or a param
            with a free dim needs optimizer state.

    Example:
        >>> step = compile_training(loss, [W1, b1], optimizer=gc.optim.Adam(lr=1e-3))
        >>> state = step.init_state(params)
        >>> loss_value = step.train_step(params, state, x=X, y=Y)
    """
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise GraphError(f"compile_training: optimizer must be a gc.optim optimizer (SGD, Adam, AdamW, RMSprop), "
                         f"got {type(optimizer).__name__} {optimizer!r}")
    params = list(params)
    graph = graph_of([loss, *params])
    for p in params:
        if not OPS[p.op].leaf:
            raise GraphError(f"compile_training: {p.name!r} is a {p.op} node; only fed nodes "
                             "(params, inputs) can be trained")
    if len(set(params)) != len(params):
        twice = next(p for i, p in enumerate(params) if p in set(params[:i]))
        raise GraphError(f"compile_training: param {twice.name!r} is listed twice")
    if optimizer is not None:
        return compile_optimized(graph, loss, params, optimizer)
    grads = grad(loss, params)
    # NOTE: every VJP is linear in its cotangent, so seeding the chain rule with lr
    # instead of 1 gives lr * gradient at no extra cost (it scales the first scalar
    # term); train_step then updates with W -= step_W: one array op per param, not two.
    lr = learning_rate(graph, loss.dtype)
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

    name = namer({lr.name: "lr"})
    emitter = Emitter(graph, name)
    emitter.statements(forward_nodes, keep=[loss.name])      # shares the forward's subexpressions
    bwd = emitter.statements(backward_nodes, keep=[g.name for g in grads])
    returned = set()
    grad_refs = tuple(emitter.output(g.name, returned) for g in grads)
    # the cache holds what backward reads of the forward pass (through inline nodes such as h.T)
    read = {a for stmt in bwd for a in emitter.reads(stmt.node)} | set(emitter.uses(g.name for g in grads))
    saved = graph.order(a for a in read if a in forward_set or OPS[graph.nx.nodes[a]["op"]].leaf)
    fwd = emitter.statements(forward_nodes, keep=[loss.name, *saved])
    step_body = emitter.statements(forward_nodes + step_nodes, keep=[loss.name, *(g.name for g in steps)])
    loss_ref = emitter.ref(loss.name)
    args = tuple(name(n) for n in param_names + data)
    cache = Tuple(tuple(Name(name(n)) for n in saved))

    forward = FunctionDef("forward", args, (*fwd, Return(Tuple((loss_ref, cache)))),
                          f"Return {loss.name!r} and the cache backward() needs.")
    backward = FunctionDef(
        "backward", ("cache",),
        (*([Assign(cache, Name("cache"))] if saved else []), *bwd, Return(Tuple(grad_refs))),
        f"Return the gradients of {loss.name!r} for {', '.join(param_names)}, in PARAMS order.")
    load = [Assign(Name(name(p)), Index(Name("params"), Const(p))) for p in param_names]
    update = [AugAssign(Name(name(p)), "-", emitter.ref(s.name), f"SGD step: {p} -= lr * d{loss.name}/d{p}")
              for p, s in zip(param_names, steps)]
    step = FunctionDef(
        "train_step", ("params", *(name(n) for n in data), "lr"),
        (*load, *step_body, *update, Return(loss_ref)),
        "One SGD step: forward, backward, then params[name] -= lr * gradient, in place.\n\n"
        "The backward pass is seeded with lr instead of 1, so each step_<node> is lr times\n"
        "the gradient. Returns the loss before the step.")
    module = Module(
        module_doc(graph, "trains: forward(), backward() and train_step()", emitter.imports),
        imports(emitter.imports),
        (constants({"PARAMS": tuple(param_names), "INPUTS": specs(graph, data)}),
         *emitter.helper_sources(), *emitter.hoisted.values(), forward, backward, step))
    printer = NumpyPrinter()
    return TrainingStep(graph, printer.print(module), printer.lines, param_names, data,
                        fed_bounds(graph, forward_nodes + backward_nodes + step_nodes))


class TrainingStep(Passes):
    """Forward, backward and SGD step of a loss (see ``compile_training``)."""

    def __init__(self, graph, source, lines, params, data, bounds):
        super().__init__(graph, source, lines, params, data, bounds)
        self._updates = Feeds(graph, params + data, params=set(params), updated=True, bounds=bounds)
        self._train_step = self.module.train_step

    def train_step(self, params: dict[str, np.ndarray], /, *, lr: float, **feeds: ArrayLike) -> float:
        """One SGD step: updates the arrays in ``params`` in place; returns the loss before it.

        Every value is checked before anything is updated, so a step that
        raises a FeedError has changed no param.
        """
        if lr.__class__ is not float and (not isinstance(lr, numbers.Real) or isinstance(lr, bool)):
            raise FeedError(f"lr must be a real number, got {type(lr).__name__} {lr!r}")
        values = self._updates.values(feeds, params)
        try:
            return self._train_step(params, *values, lr)
        except RUN_ERRORS as e:
            raise self._updates.explain(feeds, params) or self.failed(e) or e from e

    def __repr__(self):
        return f"<TrainingStep params {self.params}, inputs {self.inputs} of graph {self.graph.name!r}>"
