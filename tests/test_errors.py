"""Bad input raises a specific GraphError naming the node and what it got, and leaves the graph as it was."""
import networkx as nx
import numpy as np
import pytest

import graphcomp as gc
from founding import build, feed


def test_matmul_shape_mismatch_names_node_and_shapes():
    g = gc.Graph()
    a = g.input("a", (32, 64))
    b = g.param("b", (32, 10))
    before = set(g.nx)
    with pytest.raises(gc.ShapeError, match=r"node 'h' \(matmul\): \(32, 64\) @ \(32, 10\): inner dims 64 != 32"):
        gc.matmul(a, b, name="h")
    assert set(g.nx) == before


def test_broadcast_mismatch():
    g = gc.Graph()
    with pytest.raises(gc.ShapeError, match=r"node 's' \(add\).*\(3, 4\).*\(5,\).*do not broadcast"):
        gc.add(g.input("a", (3, 4)), g.input("b", (5,)), name="s")


def test_duplicate_name():
    g = gc.Graph()
    g.input("x", (3,))
    with pytest.raises(gc.NameConflictError, match=r"'x' is already used by a input node"):
        g.param("x", (3,))
    with pytest.raises(gc.NameConflictError, match="'x'"):
        gc.exp(g["x"], name="x")


def test_unknown_node_name():
    g = gc.Graph("net")
    with pytest.raises(gc.UnknownNodeError, match=r"graph 'net' has no node 'nope'"):
        g["nope"]


def test_bad_shapes_and_dtypes_at_declaration():
    g = gc.Graph()
    with pytest.raises(gc.ShapeError, match=r"input 'x'.*-3"):
        g.input("x", (-3, 2))
    with pytest.raises(gc.DTypeError, match=r"'x'.*'floaty'"):
        g.input("x", (2,), dtype="floaty")
    with pytest.raises(gc.GraphError, match="must be a str"):
        g.input(3, (2,))


def test_op_parameter_errors():
    g = gc.Graph()
    x = g.input("x", (2, 3))
    with pytest.raises(gc.ShapeError, match=r"node 's' \(sum\): axis 2 is out of range"):
        gc.sum(x, axis=2, name="s")
    with pytest.raises(gc.OpError, match="exponent must be a constant number"):
        gc.pow(x, x)
    with pytest.raises(gc.ShapeError, match="cannot reshape"):
        gc.reshape(x, (4,))
    with pytest.raises(gc.ShapeError, match=r"\(4,\) @ \(3, 2\): inner dims 4 != 3"):
        gc.matmul(g.input("v", (4,)), x.T)
    with pytest.raises(gc.ShapeError, match="matmul needs operands of at least 1 dim"):
        gc.matmul(g.input("s", ()), x)
    with pytest.raises(gc.OpError, match="reduction"):
        gc.nll_loss(x, g.input("lab", (2,), dtype="int64"), reduction="avg")


def test_label_errors():
    g = gc.Graph()
    logits = g.input("logits", (None, 3))
    with pytest.raises(gc.DTypeError, match=r"labels 'y' must be integers, got float64"):
        gc.cross_entropy(logits, g.input("y", (None,)))
    with pytest.raises(gc.ShapeError, match=r"\(n, classes\)"):
        gc.nll_loss(logits, g.input("y2", (None, 3), dtype="int64"))
    with pytest.raises(gc.DTypeError, match="condition 'c' must be bool"):
        gc.where(g.input("c", (3,)), logits, logits)


def test_mixing_graphs():
    a = gc.Graph("a").input("x", (2,))
    b = gc.Graph("b").input("x", (2,))
    with pytest.raises(gc.GraphError, match="belongs to graph 'b', not 'a'"):
        a + b
    with pytest.raises(gc.GraphError, match="at least one argument must be a graphcomp Tensor"):
        gc.exp(np.ones(2))


@pytest.fixture
def mlp():
    g, loss, params = build()
    return g, loss, params, gc.compile_training(loss, params), feed()


def test_missing_feed(mlp):
    g, loss, params, step, values = mlp
    f = gc.compile(loss)
    del values["y"]
    with pytest.raises(gc.FeedError, match=r"missing feed for input 'y' \(shape \(None,\), int64\)"):
        f(**values)


def test_missing_param(mlp):
    g, loss, params, step, values = mlp
    p = {"W1": values["W1"], "b1": values["b1"], "W2": values["W2"]}
    with pytest.raises(gc.FeedError, match=r"missing param for param 'b2'"):
        step.train_step(p, x=values["x"], y=values["y"], lr=0.1)


def test_wrong_feed_shape_and_dtype(mlp):
    g, loss, params, step, values = mlp
    f = gc.compile(loss)
    with pytest.raises(gc.FeedError, match=r"feed 'x': shape \(16, 63\), expected \(None, 64\)"):
        f(**dict(values, x=values["x"][:, :63]))
    with pytest.raises(gc.FeedError, match=r"feed 'x': shape \(16,\), expected \(None, 64\)"):
        f(**dict(values, x=values["x"][:, 0]))
    with pytest.raises(gc.FeedError, match=r"feed 'y': dtype float64, expected int64"):
        f(**dict(values, y=values["y"].astype(float)))
    with pytest.raises(gc.FeedError, match=r"feed 'W1': dtype float32, expected float64"):
        f(**dict(values, W1=values["W1"].astype(np.float32)))


def test_unknown_feed(mlp):
    g, loss, params, step, values = mlp
    with pytest.raises(gc.FeedError, match=r"unknown feed 'z'"):
        gc.compile(loss)(**values, z=1.0)
    p = {k: values[k] for k in ("W1", "b1", "W2", "b2")}
    with pytest.raises(gc.FeedError, match=r"unknown feed 'z'"):
        step.train_step(p, x=values["x"], y=values["y"], z=1, lr=0.1)


def test_named_free_dim_must_agree_across_feeds():
    g = gc.Graph()
    x = g.input("x", ("batch", 2))
    y = g.input("y", ("batch",))
    f = gc.compile(gc.sum(x) + gc.sum(y))
    with pytest.raises(gc.FeedError, match=r"feed 'y': free dim 'batch' is 4 here but 3 in 'x'"):
        f(x=np.ones((3, 2)), y=np.ones(4))


def test_failed_train_step_leaves_params_untouched(mlp):
    g, loss, params, step, values = mlp
    p = {k: values[k].copy() for k in ("W1", "b1", "W2", "b2")}
    with pytest.raises(gc.FeedError):
        step.train_step(p, x=values["x"], y=values["y"].astype(np.int32), lr=0.1)
    for k in p:
        np.testing.assert_array_equal(p[k], values[k])


def test_reserved_training_input_names():
    g = gc.Graph()
    lr = g.input("lr", (2,))
    w = g.param("w", (2,))
    with pytest.raises(gc.GraphError, match=r"input 'lr': the name is taken by train_step"):
        gc.compile_training(gc.sum(lr * w), [w])


def test_cycle_introduced_by_editing_nx_is_reported():
    g = gc.Graph()
    x = g.input("x", (2,))
    y = gc.exp(x, name="y")
    z = gc.tanh(y, name="z")
    g.nx.add_edge("z", "y")                 # a user edits the store directly
    with pytest.raises(gc.GraphError, match="cycle"):
        gc.compile(z)
    assert not nx.is_directed_acyclic_graph(g.nx)


def test_compile_needs_tensors():
    with pytest.raises(gc.GraphError, match="nothing to compile"):
        gc.compile([])
    with pytest.raises(gc.GraphError, match="expected graphcomp Tensors"):
        gc.compile(["loss"])


def test_every_error_is_a_graph_error():
    for cls in (gc.ShapeError, gc.DTypeError, gc.NameConflictError, gc.UnknownNodeError,
                gc.FeedError, gc.GradientError, gc.OpError):
        assert issubclass(cls, gc.GraphError)


@pytest.mark.parametrize("label", [10, -1], ids=["too large", "negative"])
def test_a_label_outside_the_classes_names_the_feed_and_changes_no_param(mlp, label):
    g, loss, params, step, values = mlp
    values["y"][3] = label                    # only 10 classes: labels are 0..9
    p = {k: values[k].copy() for k in ("W1", "b1", "W2", "b2")}
    with pytest.raises(gc.FeedError, match=rf"feed 'y': {label} at flat index 3 is not a class index of 10 "
                                           r"classes \(it must be in \[0, 10\)\)"):
        step.train_step(p, x=values["x"], y=values["y"], lr=0.1)
    for k in p:
        np.testing.assert_array_equal(p[k], values[k])


def test_anonymous_free_dims_that_broadcast_together_must_agree_when_fed():
    g = gc.Graph()
    a = g.input("a", (None, 2))
    b = g.input("b", (None, 2))
    f = gc.compile(gc.add(a, b, name="total"))
    with pytest.raises(gc.FeedError, match=r"feed 'b': dim 0 is 4 here but 3 in 'a'"):
        f(a=np.ones((3, 2)), b=np.ones((4, 2)))


def test_run_time_failure_of_a_statement_names_its_node():
    g = gc.Graph()
    x = g.input("x", (None, 3))
    f = gc.compile(gc.reshape(x, (-1, 4), name="rows"))
    with pytest.raises(gc.FeedError, match=r"computing node rows failed on the fed values: cannot reshape"):
        f(x=np.ones((5, 3)))


def test_only_fed_nodes_can_be_trained():
    g, loss, params = build()
    with pytest.raises(gc.GraphError, match=r"'h' is a relu node; only fed nodes"):
        gc.compile_training(loss, [g["h"]])
