"""grad: the founding network against hand-written backprop, fan-out, un-broadcasting, HVPs, errors."""
import numpy as np
import pytest

import graphcomp as gc
from founding import build, feed, hand_backprop


def test_founding_network_matches_hand_written_backprop():
    g, loss, params = build()
    f = gc.compile([loss, *gc.grad(loss, params)])
    values = feed()
    got = f(**values)
    want = hand_backprop(**values)
    for name, a, b in zip(["loss", "W1", "b1", "W2", "b2"], got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_founding_network_gradients_match_finite_differences():
    g, loss, params = build(n_in=8, n_hidden=6, n_out=4)
    report = gc.check_gradients(loss, params, feed(batch=5, n_in=8, n_hidden=6, n_out=4))
    assert report.ok, report
    assert max(r.max_rel_error for r in report.rows) < 1e-6


def test_gradients_are_graph_nodes_named_after_their_node():
    g, loss, params = build()
    grads = gc.grad(loss, params)
    assert [d.name for d in grads] == ["d_W1", "d_b1", "d_W2", "d_b2"]
    assert all(d.name in g.nx for d in grads)
    assert [d.shape for d in grads] == [p.shape for p in params]


def test_grad_reuses_existing_gradient_nodes():
    g, loss, params = build()
    first = gc.grad(loss, params)
    n = g.nx.number_of_nodes()
    assert gc.grad(loss, params) == first
    assert g.nx.number_of_nodes() == n


def test_fan_out_accumulates():
    g = gc.Graph()
    x = g.param("x", (3,))
    y = gc.sum(x * x + gc.tanh(x))
    d = gc.grad(y, x)
    v = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(gc.compile(d)(x=v), 2 * v + 1 - np.tanh(v) ** 2, rtol=1e-12)


def test_x_times_x_keeps_both_arguments():
    g = gc.Graph()
    x = g.param("x", (2,))
    sq = x * x
    assert sq.args == (x, x)
    assert g.nx.edges[x.name, sq.name]["positions"] == [0, 1]
    np.testing.assert_allclose(gc.compile(gc.grad(gc.sum(sq), x))(x=np.array([1.5, -2.0])), [3.0, -4.0])


@pytest.mark.parametrize("shape_a, shape_b", [((4, 3), (3,)), ((4, 3), (4, 1)), ((2, 1, 3), (5, 1)), ((), (2, 3))])
def test_broadcast_gradients_are_summed_back(shape_a, shape_b):
    g = gc.Graph()
    a = g.param("a", shape_a)
    b = g.param("b", shape_b)
    loss = gc.sum(gc.tanh(a * b + a))
    rng = np.random.default_rng(1)
    values = {"a": rng.normal(size=shape_a), "b": rng.normal(size=shape_b)}
    da, db = gc.grad(loss, [a, b])
    assert da.shape == shape_a and db.shape == shape_b
    report = gc.check_gradients(loss, [a, b], values)
    assert report.ok, report


def test_batch_dim_gradient_of_bias_sums_over_free_dim():
    g = gc.Graph()
    x = g.input("x", ("batch", 3))
    b = g.param("b", (3,))
    d = gc.grad(gc.mean(gc.tanh(x + b)), b)
    assert d.shape == (3,)
    rng = np.random.default_rng(2)
    for n in (1, 7):
        values = {"x": rng.normal(size=(n, 3)), "b": rng.normal(size=3)}
        assert gc.check_gradients(gc.mean(gc.tanh(x + b)), [b], values).ok


def test_unreachable_param_gets_zeros():
    g = gc.Graph()
    x = g.param("x", (2, 3))
    unused = g.param("unused", (4,))
    dx, du = gc.grad(gc.sum(x), [x, unused])
    f = gc.compile([dx, du])
    out = f(**{k: {"x": np.ones((2, 3)), "unused": np.arange(4.0)}[k] for k in f.inputs})
    np.testing.assert_array_equal(out[1], np.zeros(4))
    assert out[1].dtype == np.float64


def test_non_scalar_output_needs_grad_output():
    g = gc.Graph()
    x = g.param("x", (3,))
    with pytest.raises(gc.GradientError, match=r"'tanh'.*shape \(3,\).*grad_output"):
        gc.grad(gc.tanh(x, name="tanh"), x)


def test_grad_output_gives_vector_jacobian_product():
    g = gc.Graph()
    x = g.param("x", (3,))
    v = g.input("v", (3,))
    vjp = gc.grad(gc.tanh(x), x, grad_output=v)
    xs, vs = np.array([0.1, -0.5, 2.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(gc.compile(vjp)(x=xs, v=vs), vs * (1 - np.tanh(xs) ** 2), rtol=1e-12)
    with pytest.raises(gc.ShapeError, match="grad_output"):
        gc.grad(gc.tanh(x), x, grad_output=g.input("w", (4,)))


def test_cannot_differentiate_with_respect_to_integer_input():
    g, loss, params = build()
    with pytest.raises(gc.GradientError, match=r"'y'.*int64"):
        gc.grad(loss, g["y"])


def test_hessian_vector_product_matches_finite_differences_of_the_gradient():
    g, loss, params = build(n_in=6, n_hidden=5, n_out=3)
    W1 = params[0]
    v = g.input("v", W1.shape)
    (dW1,) = gc.grad(loss, [W1])
    hvp = gc.grad(gc.sum(dW1 * v), W1)
    values = feed(batch=4, n_in=6, n_hidden=5, n_out=3)
    values["v"] = np.random.default_rng(3).normal(size=W1.shape)
    got = gc.compile(hvp)(**values)
    grad_fn = gc.compile(dW1)
    eps = 1e-5
    up = dict(values, W1=values["W1"] + eps * values["v"])
    down = dict(values, W1=values["W1"] - eps * values["v"])
    numeric = (grad_fn(**{k: up[k] for k in grad_fn.inputs}) -
               grad_fn(**{k: down[k] for k in grad_fn.inputs})) / (2 * eps)
    assert np.abs(got).max() > 1e-3     # not trivially zero
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9)


def test_second_derivatives_of_smooth_ops():
    g = gc.Graph()
    x = g.param("x", (4,))
    y = gc.sum(gc.sigmoid(x) * gc.exp(x * 0.5) + gc.tanh(x) ** 3 + gc.log_softmax(x) * x)
    dx = gc.grad(y, x)
    ddx = gc.grad(gc.sum(dx), x)       # row sums of the Hessian
    xs = np.array([0.2, -0.7, 1.1, 0.4])
    assert gc.check_gradients(gc.sum(dx), [x], {"x": xs}, gradients=[ddx]).ok
