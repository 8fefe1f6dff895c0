"""compile_training with an optimizer: forward, backward, predict and an optimizer step with its state,
as one generated module; imports graph, ops, autodiff and codegen."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..autodiff import grad, reverse
from ..codegen.compiled import RUN_ERRORS, Feeds, constants, fed_bounds, imports, module_doc, namer, specs
from ..codegen.emit import Emitter, leaves, needed
from ..codegen.ir import (Assign, AugAssign, Const, Dict, FunctionDef, Index, Module, Name, Return, Tuple, np_attr,
                          np_call)
from ..codegen.printer import NumpyPrinter
from ..errors import GraphError
from ..op import OPS
from ..ops.nn import Loss
from ..shapes import format_shape
from .optim import CONSTANTS, LOCALS, LR, STEP, Optimizer
from .passes import Passes

# train_step(params, state, ...) and the module's own functions take these names
_OWN = ("state", "init_state", "predict", "STATE", *CONSTANTS, *LOCALS)


def compile_optimized(graph, loss, params, optimizer: Optimizer) -> "OptimizerStep":
    """The module of ``compile_training(loss, params, optimizer=...)`` (its arguments already checked)."""
    grads = grad(loss, params)
    param_names = [p.name for p in params]
    forward_nodes = needed(graph, [loss.name])
    forward_set = set(forward_nodes)
    backward_nodes = [n for n in needed(graph, [loss.name, *(g.name for g in grads)]) if n not in forward_set]
    data = [n for n in leaves(graph, forward_nodes + backward_nodes) if n not in param_names]
    for n in data:
        if n in ("params", "state"):
            raise GraphError(f"input {n!r}: the name is taken by train_step(params, state, ...)")
    state_specs = [(STEP, (), "int64")]
    for p in params:
        if optimizer.slots and any(not isinstance(d, int) for d in p.shape):
            raise GraphError(f"compile_training: param {p.name!r} has shape {format_shape(p.shape)}; "
                             f"{type(optimizer).__name__} "
                             "keeps state of each param's shape, so params need static shapes")
        state_specs += [(f"{p.name}.{s}", p.shape, p.dtype) for s in optimizer.slots]
    scores, labels = _classifier(graph, forward_nodes, data)
    # NOTE: plain SGD seeds the chain rule with lr, as compile_training without an optimizer does: each
    # step_<param> is then lr * gradient and the update one subtraction (the lr comes from the schedule)
    lr = learning_rate(graph, loss.dtype) if optimizer.seeds_lr() else None
    steps = reverse(loss, params, seed=lr, prefix="step_") if lr is not None else None

    name = namer({lr.name: LR} if lr is not None else None, reserved=_OWN)
    emitter = Emitter(graph, name)
    emitter.statements(forward_nodes, keep=[loss.name])      # shares the forward's subexpressions
    bwd = emitter.statements(backward_nodes, keep=[g.name for g in grads])
    returned = set()
    grad_refs = tuple(emitter.output(g.name, returned) for g in grads)
    read = {a for stmt in bwd for a in emitter.reads(stmt.node)} | set(emitter.uses(g.name for g in grads))
    saved = graph.order(a for a in read if a in forward_set or OPS[graph.nx.nodes[a]["op"]].leaf)
    fwd = emitter.statements(forward_nodes, keep=[loss.name, *saved])
    functions = [
        FunctionDef("forward", tuple(name(n) for n in param_names + data),
                    (*fwd, Return(Tuple((emitter.ref(loss.name), Tuple(tuple(Name(name(n)) for n in saved)))))),
                    f"Return {loss.name!r} and the cache backward() needs."),
        FunctionDef("backward", ("cache",),
                    (*([Assign(Tuple(tuple(Name(name(n)) for n in saved)), Name("cache"))] if saved else []),
                     *bwd, Return(Tuple(grad_refs))),
                    f"Return the gradients of {loss.name!r} for {', '.join(param_names)}, in PARAMS order.")]
    predict_args = ()
    if scores is not None:
        nodes = needed(graph, [scores])
        fed = set(leaves(graph, nodes))      # params first, then data, as forward() takes them
        predict_args = tuple(n for n in param_names + data if n in fed)
        body = emitter.statements(nodes, keep=[scores])
        functions.append(FunctionDef("predict", tuple(name(n) for n in predict_args),
                                     (*body, Return(emitter.output(scores, set()))),
                                     f"Return {scores!r} (the scores the loss compares with {labels!r}): "
                                     "the forward pass only."))

    functions.append(FunctionDef(
        "init_state", ("params",),
        (Return(Dict(tuple((Const(n), np_call("zeros", Const(()), dtype=np_attr("int64")) if n == STEP
                            else np_call("zeros_like", Index(Name("params"), Const(n.rsplit(".", 1)[0]))))
                           for n, *_ in state_specs))),),
        f"The {type(optimizer).__name__} state before the first step: no steps taken"
        + (", zero moments." if optimizer.slots else ".")))

    load = [Assign(Name(name(p)), Index(Name("params"), Const(p))) for p in param_names]
    slot_ids = {p: {s: name.local(f"{s}_{name(p)}") for s in optimizer.slots} for p in param_names}
    load += [Assign(Name(STEP), Index(Name("state"), Const(STEP)))]
    load += [Assign(Name(slot_ids[p][s]), Index(Name("state"), Const(f"{p}.{s}")))
             for p in param_names for s in optimizer.slots]
    step_nodes = []
    if lr is not None:
        step_nodes = [n for n in needed(graph, [loss.name, *(s.name for s in steps)]) if n not in forward_set]
        body = [*optimizer.prologue(()),
                *emitter.statements(forward_nodes + step_nodes, keep=[loss.name, *(s.name for s in steps)])]
        update = [AugAssign(Name(name(p)), "-", emitter.ref(s.name), f"SGD: {p} -= lr * d{loss.name}/d{p}")
                  for p, s in zip(param_names, steps, strict=True)]
    else:
        body = emitter.statements(forward_nodes + backward_nodes, keep=[loss.name, *(g.name for g in grads)])
        owned, returned = [], set()
        for p, g in zip(param_names, grads, strict=True):
            ref = emitter.output(g.name, returned)
            if isinstance(ref, Name):
                owned.append(ref.id)
            else:      # the gradient is not an array of its own (a view, an input): the update needs one
                owned.append(name.local(f"d_{name(p)}"))
                body.append(Assign(Name(owned[-1]), ref, f"a copy of {g.name}, for the update to overwrite"))
        update = list(optimizer.prologue(owned))
        for p, g in zip(param_names, owned, strict=True):
            update += optimizer.update(name(p), g, slot_ids[p], name.local)
    functions.append(FunctionDef(
        "train_step", ("params", "state", *(name(n) for n in data)),
        (*load, *body, *update, Return(emitter.ref(loss.name))),
        f"One {type(optimizer).__name__} step: forward, backward, then update params and state in place.\n\n"
        "Returns the loss before the step."))

    module = Module(
        module_doc(graph, f"trains with {optimizer}: forward(), backward(), "
                          f"{'predict(), ' if scores is not None else ''}init_state() and train_step()",
                   emitter.imports),
        imports(emitter.imports),
        (constants({"PARAMS": tuple(param_names), "INPUTS": specs(graph, data),
                    "STATE": tuple((n, tuple(shape), dtype) for n, shape, dtype in state_specs)}),
         constants(optimizer.constants()),
         *emitter.helper_sources(), *emitter.hoisted.values(), *functions))
    printer = NumpyPrinter()
    return OptimizerStep(graph, printer.print(module), printer.lines, optimizer, param_names, data, state_specs,
                         scores, labels, predict_args,
                         fed_bounds(graph, forward_nodes + backward_nodes + step_nodes))


def _classifier(graph, nodes, data):
    """``(scores, labels)``: the node names a classification loss compares, or ``(None, None)``.

    Scores are the first argument of the one loss node (``nll_loss``,
    ``cross_entropy``: ops that declare themselves a ``Loss``) whose labels
    are fed data; their arg-max is the predicted class.
    """
    found = []
    for n in nodes:
        attrs = graph.nx.nodes[n]
        op = OPS[attrs["op"]]
        if isinstance(op, Loss) and attrs["args"][op.label_arg] in data:
            found.append((attrs["args"][0], attrs["args"][op.label_arg]))
    return found[0] if len(found) == 1 else (None, None)


class OptimizerStep(Passes):
    """Forward, backward, predict and an optimizer step of a loss (see ``compile_training``).

    Attributes: ``params`` and ``inputs`` (names), ``optimizer``, ``state_specs``
    (``(name, shape, dtype)`` of each state array), ``scores`` and ``labels``
    (node names of a classifier's scores and labels, or None).
    """

    def __init__(self, graph, source, lines, optimizer, params, data, state_specs, scores, labels, predict_args,
                 bounds):
        super().__init__(graph, source, lines, params, data, bounds)
        self.optimizer = optimizer
        self.state_specs = tuple(state_specs)
        self.scores = scores
        self.labels = labels
        held = set(params)
        self._updates = Feeds(graph, params + data, params=held, updated=True, bounds=bounds, state=state_specs)
        self._held = Feeds(graph, params, params=held, updated=True, state=state_specs)
        self._params = Feeds(graph, params, params=held, updated=True)
        self._data = Feeds(graph, data, bounds=bounds)
        self._predict = Feeds(graph, list(predict_args), params=held, bounds=bounds)
        self._predict_args = list(predict_args)
        self._train_step = self.module.train_step

    def init_state(self, params: dict[str, np.ndarray], /) -> dict[str, np.ndarray]:
        """The optimizer state before the first step (zero moments, step 0), shaped like ``params``.

        Raises:
            FeedError: a param is missing, not a writeable array, or of the wrong shape or dtype.
        """
        self._params.check({}, params)
        return self.module.init_state(params)

    def train_step(self, params: dict[str, np.ndarray], state: dict[str, np.ndarray], /, **feeds: ArrayLike):
        """One optimizer step: updates the arrays in ``params`` and ``state`` in place; returns the loss before it.

        Every value is checked before anything is updated, so a step that
        raises a FeedError has changed no param and no state.
        """
        values = self._updates.values(feeds, params, state)
        try:
            return self._train_step(params, state, *values)
        except RUN_ERRORS as e:
            raise self._updates.explain(feeds, params) or self.failed(e) or e from e

    def predict(self, params: dict[str, np.ndarray], /, **feeds: ArrayLike) -> np.ndarray:
        """The classifier's scores (one row per example; arg-max is the class), by the forward pass only.

        Raises:
            GraphError: the loss is not a classification loss of fed labels, so there is nothing to predict.
            FeedError: a param or feed is missing or does not fit.
        """
        if self.scores is None:
            raise GraphError(f"graph {self.graph.name!r}: the loss compares no scores with fed labels "
                             "(nll_loss, cross_entropy), so this step has no predict()")
        values = self._predict.values(feeds, params)
        try:
            return self.module.predict(*values)
        except RUN_ERRORS as e:
            raise self._predict.explain(feeds, params) or self.failed(e) or e from e

    def __repr__(self):
        return (f"<OptimizerStep {self.optimizer} of params {self.params}, inputs {self.inputs} "
                f"of graph {self.graph.name!r}>")


def learning_rate(graph, dtype):
    """The scalar input node standing for train_step's ``lr`` (one per graph and dtype)."""
    for node in graph.inputs:
        if node._attrs["note"] == "learning rate" and node.dtype == dtype:
            return node
    with graph.noting("learning rate"):
        return graph.input(graph.unique_name("lr"), (), dtype)
