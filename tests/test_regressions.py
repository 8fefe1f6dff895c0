"""Regression tests, one group per reported defect: each asserts the fixed behaviour.

Numbers are checked in float64 against NumPy, against ``check_gradients``
(central differences of the generated forward code) or, for Hessian-vector
products, against central differences of the compiled gradient.
"""
import os
import stat
import warnings

import numpy as np
import pytest

import graphcomp as gc


def normal(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def params_of(g, shapes):
    """One float param per ``name: shape``."""
    return {name: g.param(name, shape) for name, shape in shapes.items()}


def values_of(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in shapes.items()}


def numeric_hvp(grad_fn, values, w, v, eps=1e-5):
    """Central differences of the compiled gradient along ``v``: (g(w + eps v) - g(w - eps v)) / 2 eps."""
    def at(sign):
        moved = dict(values, **{w: values[w] + sign * eps * v})
        return grad_fn(**{k: moved[k] for k in grad_fn.inputs})
    return (at(+1) - at(-1)) / (2 * eps)


def check_hvp(loss, w, values, seed=5):
    """gc.hvp(loss, w, v) is shaped like w and matches central differences of gc.grad(loss, w)."""
    g = loss.graph
    v = g.input("v", w.shape)
    hv = gc.hvp(loss, w, v)
    assert isinstance(hv, gc.Tensor) and hv.shape == w.shape
    direction = normal(values[w.name].shape, seed)
    f = gc.compile(hv)
    got = f(**{k: dict(values, v=direction)[k] for k in f.inputs})
    want = numeric_hvp(gc.compile(gc.grad(loss, w)), values, w.name, direction)
    assert np.abs(want).max() > 1e-3            # not trivially zero
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


# --- 1. Sibling branches whose VJPs build the same expression (was KeyError('_tN')) -----------

XY = {"x": (3,), "y": (3,)}
LINEAR = {"x": (4, 3), "W": (3, 2), "b1": (2,), "b2": (2,)}
TOWERS = {"x": (4, 3), "Wa": (3, 5), "Va": (5, 2), "Wb": (3, 5), "Vb": (5, 2)}


def linear_two_biases(p):
    return gc.sum(gc.tanh(p["x"] @ p["W"] + p["b1"] + p["b2"]))


def two_towers(first, second):
    """sum(a*0.5 + b*0.5) of two MLP towers a and b, each built whole, in the order given."""
    def build(p):
        out = {k: gc.tanh(p["x"] @ p[f"W{k}"]) @ p[f"V{k}"] for k in (first, second)}
        return gc.sum(out["a"] * 0.5 + out["b"] * 0.5)
    return build


SHARED_VJP_CASES = [        # param shapes, loss, wrt
    pytest.param(XY, lambda p: gc.sum(p["x"] * 2.0 + p["y"] * 2.0), ["x", "y"], id="x*2+y*2"),
    pytest.param(XY, lambda p: gc.sum(p["y"] * 2.0 + p["x"] * 2.0), ["x", "y"], id="y*2+x*2"),
    pytest.param(XY, lambda p: gc.sum(p["x"] * 2.0 + p["y"] * 2.0), ["y", "x"], id="x*2+y*2 wrt y,x"),
    pytest.param(XY, lambda p: gc.sum(-p["x"] + -p["y"]), ["x", "y"], id="-x+-y"),
    pytest.param(XY, lambda p: gc.sum(-p["y"] + -p["x"]), ["x", "y"], id="-y+-x"),
    pytest.param(LINEAR, linear_two_biases, ["b1", "b2"], id="xW+b1+b2 wrt b1,b2"),
    pytest.param(LINEAR, linear_two_biases, ["b2", "b1"], id="xW+b1+b2 wrt b2,b1"),
    pytest.param(LINEAR, linear_two_biases, ["W", "b1", "b2"], id="xW+b1+b2 wrt W,b1,b2"),
    pytest.param(TOWERS, two_towers("a", "b"), ["Wa", "Va", "Wb", "Vb"], id="towers a then b"),
    pytest.param(TOWERS, two_towers("b", "a"), ["Wa", "Va", "Wb", "Vb"], id="towers b then a"),
]


@pytest.mark.parametrize("shapes, build, wrt", SHARED_VJP_CASES)
def test_siblings_with_equal_vjp_expressions_get_correct_gradients(shapes, build, wrt):
    g = gc.Graph()
    p = params_of(g, shapes)
    report = gc.check_gradients(build(p), [p[n] for n in wrt], values_of(shapes))
    assert report.ok, report


def sum_times_mean_of_square(w):
    q = w * w
    return gc.sum(q) * gc.mean(q)


def sum_plus_mean_of_tanh(w):
    t = gc.tanh(w)
    return gc.sum(t) + gc.mean(t)


TWO_REDUCTIONS = [sum_times_mean_of_square, sum_plus_mean_of_tanh]


@pytest.mark.parametrize("build", TWO_REDUCTIONS)
def test_hvp_of_a_node_read_by_two_reductions_matches_differences_of_the_gradient(build):
    g = gc.Graph()
    w = g.param("w", (4,))
    check_hvp(build(w), w, {"w": normal(4, seed=1)})


SECOND_ORDER = {
    "grad(sum(grad * v))": lambda loss, w, v: gc.grad(gc.sum(gc.grad(loss, w) * v), w),
    "grad(grad, grad_output=v)": lambda loss, w, v: gc.grad(gc.grad(loss, w), w, grad_output=v),
}


@pytest.mark.parametrize("hvp", list(SECOND_ORDER.values()), ids=list(SECOND_ORDER))
@pytest.mark.parametrize("build", TWO_REDUCTIONS)
def test_grad_of_gradient_through_two_reductions_matches_differences(build, hvp):
    g = gc.Graph()
    w, v = g.param("w", (4,)), g.input("v", (4,))
    loss = build(w)
    values, direction = {"w": normal(4, seed=1)}, normal(4, seed=5)
    got = gc.compile(hvp(loss, w, v))(w=values["w"], v=direction)
    want = numeric_hvp(gc.compile(gc.grad(loss, w)), values, "w", direction)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


HELD = [                    # the held Tensor, its NumPy value
    pytest.param(lambda x: x * 2.0, lambda xs: xs * 2.0, id="x*2.0"),
    pytest.param(lambda x: 1 - gc.tanh(x) * gc.tanh(x), lambda xs: 1 - np.tanh(xs) ** 2, id="1-tanh(x)^2"),
]


@pytest.mark.parametrize("hold, ref", HELD)
def test_tensor_held_before_grad_keeps_its_name_and_value(hold, ref):
    g = gc.Graph()
    x, y = g.param("x", (3,)), g.param("y", (3,))
    t = hold(x)
    name = t.name
    gc.grad(gc.sum(t + y * 2.0 + gc.tanh(x) * 2.0), [x, y])
    assert t.name == name and name in g
    xs = normal(3)
    np.testing.assert_allclose(gc.compile(t)(x=xs), ref(xs), rtol=1e-12)


# --- 2. User nodes named like grad's temporaries (_t1, d_x) must not be reused by grad ---------

@pytest.mark.parametrize("kind", ["input", "op"])
@pytest.mark.parametrize("name", ["_t1", "_t2", "d_x"])
def test_user_node_named_like_a_temporary_does_not_hijack_a_later_gradient(name, kind):
    g = gc.Graph()
    x, c = g.param("x", (3,)), g.param("c", (3,))
    loss = gc.sum(gc.tanh(x) * c * 3.0)
    gc.grad(loss, c)                            # builds (and prunes) temporaries for x's side
    if kind == "input":
        g.input(name, (3,))
    else:
        gc.exp(c, name=name)
    xs, cs = normal(3, seed=1), normal(3, seed=2)
    np.testing.assert_allclose(gc.compile(gc.grad(loss, x))(x=xs, c=cs),
                               3 * cs * (1 - np.tanh(xs) ** 2), rtol=1e-12)


def test_user_nodes_taking_every_pruned_temporary_name_do_not_hijack_a_gradient():
    g = gc.Graph()
    x, c = g.param("x", (3,)), g.param("c", (3,))
    loss = gc.sum(gc.tanh(x) * c * 3.0)
    gc.grad(loss, x)
    for k in range(20):
        if f"_t{k}" not in g:
            g.input(f"_t{k}", (3,))
    xs, cs = normal(3, seed=1), normal(3, seed=2)
    f = gc.compile(gc.grad(loss, c))
    np.testing.assert_allclose(f(**{k: {"x": xs, "c": cs}[k] for k in f.inputs}), 3 * np.tanh(xs), rtol=1e-12)


# --- 3. Free dims that would broadcast at run time are refused, naming the values -------------

def one_dim_graph():
    g = gc.Graph()
    x, p = g.input("x", (None,)), g.param("p", (None,))
    return gc.sum(x * p), p


@pytest.mark.parametrize("output", ["loss", "grad"])
def test_two_free_dims_fed_sizes_that_broadcast_raise_feed_error_naming_both(output):
    loss, p = one_dim_graph()
    f = gc.compile(loss if output == "loss" else gc.grad(loss, p))
    with pytest.raises(gc.FeedError) as e:
        f(x=normal(3), p=normal(1))
    assert "'x'" in str(e.value) and "'p'" in str(e.value)


def test_free_dim_fed_size_one_against_a_static_dim_raises_feed_error_naming_it():
    g = gc.Graph()
    p, x = g.param("p", (None, 3)), g.input("x", (5, 3))
    loss = gc.sum(p * x)
    for f in (gc.compile(loss), gc.compile(gc.grad(loss, p))):
        with pytest.raises(gc.FeedError, match="'p'"):
            f(p=normal((1, 3)), x=normal((5, 3)))


def test_free_dims_fed_consistent_sizes_give_correct_gradients():
    loss, p = one_dim_graph()
    assert gc.check_gradients(loss, [p], {"x": normal(3), "p": normal(3, seed=1)}).ok
    g = gc.Graph()
    p, x = g.param("p", (None, 3)), g.input("x", (5, 3))
    assert gc.check_gradients(gc.sum(p * x), [p], {"p": normal((5, 3)), "x": normal((5, 3), seed=1)}).ok


# --- 4. Unary math on small-integer and bool inputs -------------------------------------------

UNARY = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
}


def small_values(dtype, positive):
    if dtype == "bool":
        return np.array([True, True, True, True] if positive else [True, False, True, True])
    return np.array([1, 2, 3, 4], dtype=dtype)


@pytest.mark.parametrize("fn", list(UNARY))
@pytest.mark.parametrize("dtype", ["int8", "uint8", "bool", "int16", "int32"])
def test_unary_math_on_small_int_input_is_float64_and_matches_numpy(dtype, fn):
    g = gc.Graph()
    x = g.input("x", (4,), dtype=dtype)
    y = getattr(gc, fn)(x)
    xs = small_values(dtype, positive=fn == "log")
    got = gc.compile(y)(x=xs)
    assert y.dtype == "float64"
    assert got.dtype == np.dtype(y.dtype)
    np.testing.assert_allclose(got, UNARY[fn](xs.astype("float64")), rtol=1e-12, atol=0)


def test_relu_of_bool_is_refused_or_keeps_its_inferred_dtype():
    g = gc.Graph()
    b = g.input("b", (3,), dtype="bool")
    try:
        y = gc.relu(b)
    except gc.DTypeError:
        return
    assert gc.compile(y)(b=np.array([True, False, True])).dtype == np.dtype(y.dtype)


def test_empty_2d_constant_keeps_its_shape():
    g = gc.Graph()
    c = g.constant(np.zeros((0, 3)))
    assert c.shape == (0, 3)
    assert gc.compile(c)().shape == (0, 3)
    assert gc.compile(c * 2.0)().shape == (0, 3)


# --- 5. check_gradients: non-C-ordered feeds, and intermediate nodes in wrt -------------------

def matmul_graph():
    g = gc.Graph()
    x, W = g.input("x", (3, 4)), g.param("W", (4, 2))
    h = gc.tanh(x @ W, name="h")
    return g, gc.sum(h * h), x, W, h


@pytest.mark.parametrize("layout", ["fortran", "transposed view"])
def test_check_gradients_passes_for_non_contiguous_feeds(layout):
    g, loss, x, W, h = matmul_graph()
    if layout == "fortran":
        feed = {"x": np.asfortranarray(normal((3, 4))), "W": np.asfortranarray(normal((4, 2), seed=1))}
    else:
        feed = {"x": normal((4, 3)).T, "W": normal((2, 4), seed=1).T}
    report = gc.check_gradients(loss, [x, W], feed)
    assert report.ok, report


def test_check_gradients_refuses_an_intermediate_node_in_wrt():
    g, loss, x, W, h = matmul_graph()
    feed = {"x": normal((3, 4)), "W": normal((4, 2), seed=1), "h": normal((3, 2), seed=2)}
    with pytest.raises(gc.GradientError, match="'h'"):
        gc.check_gradients(loss, [W, h], feed)


# --- 6. Labels out of range (negative or >= classes) are refused ------------------------------

LABEL_LOSSES = {
    "nll_loss(log_softmax)": lambda z, y: gc.nll_loss(gc.log_softmax(z), y),
    "cross_entropy": lambda z, y: gc.cross_entropy(z, y),
}


@pytest.mark.parametrize("labels", [[0, -1, 2, 1], [0, 3, 2, 1]], ids=["negative", "too big"])
@pytest.mark.parametrize("output", ["loss", "grad"])
@pytest.mark.parametrize("loss_fn", list(LABEL_LOSSES))
def test_labels_out_of_range_raise_feed_error(loss_fn, output, labels):
    g = gc.Graph()
    z, y = g.param("z", (None, 3)), g.input("y", (None,), dtype="int64")
    loss = LABEL_LOSSES[loss_fn](z, y)
    f = gc.compile(loss if output == "loss" else gc.grad(loss, z))
    with pytest.raises(gc.FeedError):
        f(z=normal((4, 3)), y=np.array(labels))


# --- 7. train_step: malformed params and lr are refused, all or nothing -----------------------

def training_setup():
    g = gc.Graph()
    x, y = g.input("x", (None, 3)), g.input("y", (None,), dtype="int64")
    W, b = g.param("W", (3, 4)), g.param("b", (4,))
    loss = gc.cross_entropy(x @ W + b, y)
    params = {"W": normal((3, 4)), "b": normal(4, seed=1)}
    data = {"x": normal((5, 3), seed=2), "y": np.array([0, 1, 2, 3, 0])}
    return gc.compile_training(loss, [W, b]), params, data


@pytest.mark.parametrize("as_list", [["b"], ["W", "b"]], ids=["one list", "all lists"])
def test_train_step_refuses_params_given_as_lists(as_list):
    step, params, data = training_setup()
    for name in as_list:
        params[name] = params[name].tolist()
    with pytest.raises(gc.FeedError, match=f"'({'|'.join(as_list)})'"):
        step.train_step(params, lr=0.1, **data)


@pytest.mark.parametrize("read_only", ["W", "b"])
def test_train_step_refuses_a_read_only_param_and_changes_none(read_only):
    step, params, data = training_setup()
    params[read_only].flags.writeable = False
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(gc.FeedError, match=rf"\b{read_only}\b"):
        step.train_step(params, lr=0.1, **data)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k], err_msg=k)


@pytest.mark.parametrize("lr", ["0.1", np.ones(2)], ids=["str", "array"])
def test_train_step_refuses_a_non_scalar_learning_rate(lr):
    step, params, data = training_setup()
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(gc.FeedError, match="lr"):
        step.train_step(params, lr=lr, **data)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k], err_msg=k)


def test_compile_training_refuses_a_param_listed_twice():
    g = gc.Graph()
    w = g.param("w", (3,))
    with pytest.raises(gc.GraphError, match="'w'"):
        gc.compile_training(gc.sum(w * w), [w, w])


# --- 8. backward(cache) when forward and backward both use h.T -------------------------------

def gram_of_linear(x, W):
    h = x @ W
    return gc.sum(h.T @ h)


def gram_of_tanh(x, W):
    h = gc.tanh(x @ W)
    return gc.sum(h.T @ h)


TRANSPOSE_LOSSES = {
    "sum(h.T @ h), h = x @ W": gram_of_linear,
    "sum(h.T @ h), h = tanh(x @ W)": gram_of_tanh,
    "sum(x.T @ tanh(x @ W))": lambda x, W: gc.sum(x.T @ gc.tanh(x @ W)),
    "sum(tanh(x @ W).T @ x)": lambda x, W: gc.sum(gc.tanh(x @ W).T @ x),
}


@pytest.mark.parametrize("build", list(TRANSPOSE_LOSSES.values()), ids=list(TRANSPOSE_LOSSES))
def test_backward_from_cache_when_forward_and_backward_share_a_transpose(build):
    g = gc.Graph()
    x, W = g.input("x", (5, 3)), g.param("W", (3, 3))
    loss = build(x, W)
    step = gc.compile_training(loss, [W])
    params, data = {"W": normal((3, 3))}, {"x": normal((5, 3), seed=1)}
    got = step.backward(step.forward(params, **data)[1])
    want = gc.compile(gc.grad(loss, W))(**params, **data)
    np.testing.assert_allclose(got["W"], want, rtol=1e-12)


# --- 9. Node and feed names that clash with generated code's own names ------------------------

CLASHING_NAMES = ["_softmax", "_log_softmax", "_cross_entropy", "_softmax_nll_grad", "np", "run"]


@pytest.mark.parametrize("where", ["input", "intermediate"])
@pytest.mark.parametrize("name", CLASHING_NAMES)
def test_node_named_like_generated_helper_compiles_to_right_values(name, where):
    g = gc.Graph()
    x = g.input(name if where == "input" else "x", (4, 3))
    y = g.input("y", (4,), dtype="int64")
    h = gc.tanh(x, name=None if where == "input" else name)
    loss = (gc.sum(gc.softmax(h) * gc.log_softmax(h)) + gc.cross_entropy(h, y)
            + gc.nll_loss(gc.log_softmax(h), y))
    xs, ys = normal((4, 3)), np.array([0, 2, 1, 2])
    hs = np.tanh(xs)
    logp = hs - hs.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    want = np.sum(np.exp(logp) * logp) - 2 * logp[np.arange(4), ys].mean()
    np.testing.assert_allclose(gc.compile(loss)(**{x.name: xs, "y": ys}), want, rtol=1e-12)
    report = gc.check_gradients(loss, [x], {x.name: xs, "y": ys})
    assert report.ok, report


def self_graph():
    g = gc.Graph()
    s, W = g.input("self", (None, 3)), g.param("W", (3, 2))
    return gc.mean(gc.tanh(s @ W)), W


def test_feed_named_self_can_be_passed_to_a_compiled_function():
    loss, W = self_graph()
    xs, Ws = normal((4, 3)), normal((3, 2), seed=1)
    np.testing.assert_allclose(gc.compile(loss)(self=xs, W=Ws), np.tanh(xs @ Ws).mean(), rtol=1e-12)


def test_feed_named_self_can_be_passed_to_train_step():
    loss, W = self_graph()
    step = gc.compile_training(loss, [W])
    xs, Ws = normal((4, 3)), normal((3, 2), seed=1)
    d_W = gc.compile(gc.grad(loss, W))(self=xs, W=Ws)
    params = {"W": Ws.copy()}
    value = step.train_step(params, lr=0.1, self=xs)
    np.testing.assert_allclose(value, np.tanh(xs @ Ws).mean(), rtol=1e-12)
    np.testing.assert_allclose(params["W"], Ws - 0.1 * d_W, rtol=1e-12)


# --- 10. Smaller defects ----------------------------------------------------------------------

def test_gradient_of_x_to_the_zero_is_zero_at_zero():
    g = gc.Graph()
    x = g.param("x", (3,))
    got = gc.compile(gc.grad(gc.sum(x ** 0), x))(x=np.array([0.0, 1.0, -2.0]))
    np.testing.assert_array_equal(got, np.zeros(3))


def test_truth_value_of_a_tensor_is_refused():
    g = gc.Graph()
    x = g.input("x", (3,))
    with pytest.raises(gc.GraphError):
        bool(x > 0)


def test_builtin_max_of_a_tensor_is_refused():
    g = gc.Graph()
    x = g.input("x", (3,))
    with pytest.raises(gc.GraphError):
        max(x, 0)


def test_numpy_array_on_the_left_of_a_tensor_gives_a_tensor():
    g = gc.Graph()
    x = g.input("x", (3,))
    y = np.ones(3) + x
    assert isinstance(y, gc.Tensor)
    np.testing.assert_allclose(gc.compile(y)(x=np.arange(3.0)), np.arange(3.0) + 1)


EMPTY_BATCH_LOSSES = {
    "mean": lambda x, W, y: gc.mean(gc.tanh(x @ W)),
    "nll_loss": lambda x, W, y: gc.nll_loss(gc.log_softmax(x @ W), y),
    "cross_entropy": lambda x, W, y: gc.cross_entropy(x @ W, y),
}


@pytest.mark.parametrize("output", ["loss", "grad"])
@pytest.mark.parametrize("loss_fn", list(EMPTY_BATCH_LOSSES))
def test_mean_loss_over_an_empty_batch_is_nan_or_a_feed_error(loss_fn, output):
    """Never a bare ZeroDivisionError: NumPy's answer (a mean of nothing is NaN, its gradient sums
    nothing), or a FeedError naming the node where a Python int division by the batch size failed."""
    g = gc.Graph()
    x, y = g.input("x", (None, 3)), g.input("y", (None,), dtype="int64")
    W = g.param("W", (3, 2))
    loss = EMPTY_BATCH_LOSSES[loss_fn](x, W, y)
    f = gc.compile(loss if output == "loss" else gc.grad(loss, W))
    feed = {"x": np.zeros((0, 3)), "y": np.zeros(0, dtype="int64"), "W": normal((3, 2))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            value = f(**{k: feed[k] for k in f.inputs})
        except gc.FeedError as e:
            assert "computing node" in str(e)
            return
    assert np.isnan(value) if output == "loss" else np.all(value == 0)


@pytest.mark.parametrize("build", [lambda b: -b, lambda b: b - b, gc.sign], ids=["-b", "b - b", "sign(b)"])
def test_arithmetic_on_bool_tensors_is_refused_at_build(build):
    g = gc.Graph()
    b = g.input("b", (3,), dtype="bool")
    with pytest.raises(gc.DTypeError):
        build(b)


def test_gradient_equal_to_grad_output_is_a_writeable_copy():
    g = gc.Graph()
    x, ct = g.param("x", (2, 3)), g.input("ct", (6,))
    d = gc.grad(gc.reshape(x, (6,)), x, grad_output=ct)
    cts = normal(6)
    f = gc.compile(d)
    got = f(**{k: {"x": normal((2, 3)), "ct": cts}[k] for k in f.inputs})
    np.testing.assert_array_equal(got, cts.reshape(2, 3))
    assert got.flags.writeable and not np.shares_memory(got, cts)


def test_broadcast_gradient_is_writeable():
    g = gc.Graph()
    x = g.param("x", (2, 3))
    f = gc.compile(gc.grad(gc.sum(x), x))
    assert f.inputs == []
    got = f()
    np.testing.assert_array_equal(got, np.ones((2, 3)))
    assert got.flags.writeable


def test_gradients_of_two_biases_share_no_memory():
    g = gc.Graph()
    x, W = g.input("x", (4, 3)), g.param("W", (3, 2))
    b1, b2 = g.param("b1", (2,)), g.param("b2", (2,))
    f = gc.compile(gc.grad(gc.sum(x @ W + b1 + b2), [b1, b2]))
    feed = {"x": normal((4, 3)), "W": normal((3, 2), seed=1), "b1": normal(2), "b2": normal(2)}
    d_b1, d_b2 = f(**{k: feed[k] for k in f.inputs})
    assert d_b1.flags.writeable and d_b2.flags.writeable
    assert not np.shares_memory(d_b1, d_b2)


def test_500_chained_transposes_compile_and_run():
    g = gc.Graph()
    x = g.input("x", (2, 3))
    t = x
    for _ in range(500):
        t = t.T
    xs = normal((2, 3))
    np.testing.assert_array_equal(gc.compile(t)(x=xs), xs)


@pytest.mark.parametrize("what", ["compiled", "training step"])
def test_saved_module_has_the_umask_default_mode(what, tmp_path):
    g = gc.Graph()
    w = g.param("w", (3,))
    loss = gc.sum(w * w)
    generated = gc.compile(loss) if what == "compiled" else gc.compile_training(loss, [w])
    old = os.umask(0o022)
    try:
        path = generated.save(tmp_path / "generated.py")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~0o022


def test_big_endian_float64_feed_is_accepted():
    g = gc.Graph()
    x = g.input("x", (3,))
    xs = normal(3)
    np.testing.assert_allclose(gc.compile(gc.tanh(x))(x=xs.astype(">f8")), np.tanh(xs), rtol=1e-12)


def test_expand_dims_takes_a_numpy_integer_axis():
    g = gc.Graph()
    x = g.input("x", (3,))
    y = gc.expand_dims(x, np.int64(0))
    assert y.shape == (1, 3)
    np.testing.assert_array_equal(gc.compile(y)(x=np.arange(3.0)), np.arange(3.0)[None])


def test_misspelled_feed_name_suggests_the_right_one():
    g = gc.Graph()
    x = g.input("x", (3,))
    with pytest.raises(gc.FeedError, match="did you mean 'x'"):
        gc.compile(gc.tanh(x))(X=np.zeros(3))


# --- 11. NumPy matmul semantics for 1-D operands; reshape with -1 over a free dim --------------

MATMUL_SHAPES = [
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_with_1d_operands_follows_numpy(shape_a, shape_b):
    g = gc.Graph()
    a, b = g.param("a", shape_a), g.param("b", shape_b)
    y = a @ b
    values = {"a": normal(shape_a), "b": normal(shape_b, seed=1)}
    want = np.matmul(values["a"], values["b"])
    assert y.shape == want.shape
    np.testing.assert_allclose(gc.compile(y)(**values), want, rtol=1e-12)
    report = gc.check_gradients(gc.sum(gc.tanh(y)), [a, b], values)
    assert report.ok, report


@pytest.mark.parametrize("kind", ["param", "input"])
def test_textbook_hvp_of_tanh_of_matrix_times_vector(kind):
    g = gc.Graph()
    A = getattr(g, kind)("A", (5, 3))
    w = g.param("w", (3,))
    check_hvp(gc.sum(gc.tanh(A @ w) ** 2), w, {"A": normal((5, 3)), "w": normal(3, seed=1)})


@pytest.mark.parametrize("shape", [(-1,), (-1, 2)])
def test_reshape_with_minus_one_over_a_free_dim(shape):
    g = gc.Graph()
    x = g.param("x", (None, 4))
    r = gc.reshape(x, shape)
    xs = normal((3, 4))
    np.testing.assert_allclose(gc.compile(r)(x=xs), xs.reshape(shape), rtol=1e-12)
    report = gc.check_gradients(gc.sum(gc.tanh(r) ** 2), [x], {"x": xs})
    assert report.ok, report
