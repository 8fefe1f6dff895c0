"""Hypothesis-built graphs: random valid graphs have correct values and gradients; bad input raises a GraphError.

(a) Random DAGs of smooth element-wise ops, reductions, softmaxes and matmuls
    over small broadcast shapes, each mirrored by a plain NumPy computation:
    the compiled forward value matches it and ``check_gradients`` passes.
(b) Random invalid graphs and feeds raise a ``gc.GraphError`` subclass and
    never another exception.
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import graphcomp as gc

# ---- (a) random valid graphs -------------------------------------------------------------------


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name -> (graph function, NumPy function) of one tensor; all smooth on every real input
UNARY = {
    "tanh": (gc.tanh, np.tanh),
    "sigmoid": (gc.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "exp(tanh)": (lambda x: gc.exp(gc.tanh(x)), lambda x: np.exp(np.tanh(x))),
    "neg": (lambda x: -x, np.negative),
    "square": (lambda x: x * x, np.square),
    "cube": (lambda x: x ** 3, lambda x: x ** 3),
    "scale": (lambda x: 0.7 * x - 0.2, lambda x: 0.7 * x - 0.2),
    "sqrt(1+x^2)": (lambda x: gc.sqrt(1.0 + x ** 2), lambda x: np.sqrt(1.0 + x ** 2)),
    "log(1.5+tanh)": (lambda x: gc.log(1.5 + gc.tanh(x)), lambda x: np.log(1.5 + np.tanh(x))),
    "pow(1+sigmoid,-1.5)": (lambda x: gc.pow(1 + gc.sigmoid(x), -1.5),
                            lambda x: (1 + 1 / (1 + np.exp(-x))) ** -1.5),
    "flatten-unflatten": (lambda x: gc.reshape(gc.reshape(x, -1), x.shape),
                          lambda x: x.reshape(-1).reshape(x.shape)),
}
BINARY = {
    "add": (gc.add, np.add),
    "sub": (gc.sub, np.subtract),
    "mul": (gc.mul, np.multiply),
    "div(a,2+tanh(b))": (lambda a, b: a / (2 + gc.tanh(b)), lambda a, b: a / (2 + np.tanh(b))),
}


@st.composite
def random_graphs(draw):
    """A random DAG with its NumPy mirror: returns (loss, params, feed, NumPy loss)."""
    ndim = draw(st.integers(1, 3))
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    g = gc.Graph("random")
    params, feed = [], {}
    pool = []          # (tensor, NumPy value); every shape broadcasts to base

    def new_param(shape):
        name = f"p{len(params)}"
        params.append(g.param(name, shape))
        feed[name] = rng.uniform(-1.5, 1.5, shape)
        return params[-1], feed[name]

    def broadcastable_shape():
        k = draw(st.integers(0, ndim))
        return tuple(d if draw(st.booleans()) else 1 for d in base[ndim - k:])

    pool.append(new_param(base))
    for _ in range(draw(st.integers(0, 2))):
        pool.append(new_param(broadcastable_shape()))
    pick = st.integers(0, 10 ** 6).map(lambda i: pool[i % len(pool)])

    for kind in draw(st.lists(st.sampled_from(["unary", "binary", "binary", "reduce", "softmax",
                                               "matmul", "broadcast"]), min_size=1, max_size=7)):
        t, v = draw(pick)
        if kind == "unary":
            f, ref = UNARY[draw(st.sampled_from(sorted(UNARY)))]
            pool.append((f(t), ref(v)))
        elif kind == "binary":
            (f, ref), (u, w) = BINARY[draw(st.sampled_from(sorted(BINARY)))], draw(pick)
            pool.append((f(t, u), ref(v, w)) if draw(st.booleans()) else (f(u, t), ref(w, v)))
        elif kind == "reduce" and t.ndim:
            mean = draw(st.booleans())
            f, ref = (gc.mean, np.mean) if mean else (gc.sum, np.sum)
            if draw(st.booleans()):     # any axes, kept as size 1
                axes = tuple(draw(st.sets(st.integers(0, t.ndim - 1), min_size=1)))
                pool.append((f(t, axes, keepdims=True), ref(v, axis=axes, keepdims=True)))
            else:                        # leading axes (or all), dropped
                lead = tuple(range(draw(st.integers(1, t.ndim))))
                axis = None if len(lead) == t.ndim and draw(st.booleans()) else lead
                pool.append((f(t, axis), ref(v, axis=axis)))
        elif kind == "softmax" and t.ndim:
            axis = draw(st.integers(-t.ndim, t.ndim - 1))
            if draw(st.booleans()):
                pool.append((gc.softmax(t, axis), np_softmax(v, axis)))
            else:
                pool.append((gc.log_softmax(t, axis), np.log(np_softmax(v, axis))))
        elif kind == "matmul" and t.ndim >= 2:
            w, wv = new_param((t.shape[-1], base[-1]))
            pool.append((t @ w, v @ wv))
        elif kind == "broadcast":
            like, _ = pool[0]
            pool.append((gc.broadcast_like(t, like), np.broadcast_to(v, base)))

    out, out_v = pool[-1]
    extra, extra_v = draw(pick)
    w1, w2 = rng.normal(size=np.shape(out_v)), rng.normal(size=np.shape(extra_v))
    loss = gc.sum(out * g.constant(w1)) + 0.5 * gc.mean(extra * g.constant(w2))
    return loss, params, feed, np.sum(out_v * w1) + 0.5 * np.mean(extra_v * w2)


def explicit(build, shapes):
    """A random_graphs case written out: ``build(*params)`` with params of ``shapes`` and its NumPy mirror."""
    rng = np.random.default_rng(7)
    g = gc.Graph("explicit")
    params = [g.param(f"p{i}", s) for i, s in enumerate(shapes)]
    feed = {p.name: rng.uniform(-1.5, 1.5, p.shape) for p in params}
    return build(gc, *params), params, feed, build(np, *feed.values())


# Cases that crashed grad with KeyError('_tN') (two siblings' VJPs built the same expression)
SIBLINGS = explicit(lambda m, x, y: m.sum(x * 2.0 + y * 2.0), [(3,), (3,)])
NEGATIONS = explicit(lambda m, x, y: m.sum(-x + -y), [(2, 2), (2, 2)])
TOWERS = explicit(lambda m, x, w, v: m.sum(m.tanh(x * w) * 0.5 + m.tanh(x * v) * 0.5), [(3,), (3,), (3,)])
BIASES = explicit(lambda m, x, W, b1, b2: m.sum(m.tanh(x @ W + b1 + b2)), [(2, 3), (3, 2), (2,), (2,)])


@given(random_graphs())
@example(SIBLINGS)
@example(NEGATIONS)
@example(TOWERS)
@example(BIASES)
def test_random_graph_forward_matches_numpy_and_gradients_match_differences(case):
    loss, params, feed, want = case
    f = gc.compile(loss)
    np.testing.assert_allclose(f(**{k: feed[k] for k in f.inputs}), want, rtol=1e-12, atol=1e-12)
    # Params the loss does not use get zero gradients; check_gradients cannot check them
    # (see test_check_gradients_of_a_param_the_loss_does_not_use).
    used = [p for p in params if p.name in f.inputs]
    unused = [p for p in params if p.name not in f.inputs]
    if unused:
        f_zeros = gc.compile(gc.grad(loss, unused))
        zeros = f_zeros(**{k: feed[k] for k in f_zeros.inputs})
        assert all(not np.any(z) and np.shape(z) == p.shape for p, z in zip(unused, zeros))
    report = gc.check_gradients(loss, used, feed, rtol=1e-5, atol=1e-7)
    assert report.ok, f"\n{report}"
    # norm-wise relative error, unless the gradient is zero (e.g. through a sum of a softmax)
    assert all(r.max_rel_error <= 1e-6 or r.max_abs_error <= 1e-8 for r in report.rows), f"\n{report}"


@given(random_graphs(), st.integers(0, 2 ** 32 - 1))
@example(SIBLINGS, 0)
@example(BIASES, 1)
def test_random_graph_jvp_and_hvp_agree_with_gradients(case, seed):
    """jvp(loss, p, t) = grad . t, and hvp(loss, p, v) matches central differences of the compiled gradient."""
    loss, params, feed, _ = case
    rng = np.random.default_rng(seed)
    g = loss.graph
    p = params[0]
    t = rng.normal(size=p.shape)
    grads, tangent, hv = gc.grad(loss, p), gc.jvp(loss, p, g.constant(t)), gc.hvp(loss, p, g.constant(t))
    f = gc.compile([grads, tangent, hv])
    values = {k: feed[k] for k in f.inputs}
    got_grad, got_jvp, got_hvp = f(**values)
    np.testing.assert_allclose(got_jvp, np.sum(got_grad * t), rtol=1e-9, atol=1e-12)
    f_grad = gc.compile(grads)
    eps = 1e-6

    def grad_at(step):
        moved = dict(values, **{p.name: feed[p.name] + step * t})
        return f_grad(**{k: moved[k] for k in f_grad.inputs}) if f_grad.inputs else f_grad()

    numeric = (grad_at(eps) - grad_at(-eps)) / (2 * eps)
    np.testing.assert_allclose(got_hvp, numeric, rtol=1e-5, atol=1e-6 * (1 + np.max(np.abs(numeric))))


def test_check_gradients_of_a_param_the_loss_does_not_use():
    g = gc.Graph("t")
    x, y = g.param("x", (2,)), g.param("y", (2,))
    report = gc.check_gradients(gc.sum(x * x), [x, y], {"x": np.ones(2), "y": np.ones(2)})
    assert report.ok and report["y"].max_abs_error == 0


# ---- (b) invalid input raises a GraphError -----------------------------------------------------

small_dims = st.integers(1, 4)


@st.composite
def non_broadcastable_shapes(draw):
    """Two shapes that NumPy cannot broadcast (checked with np.broadcast_shapes)."""
    a = tuple(draw(st.lists(small_dims, min_size=1, max_size=3)))
    i = draw(st.integers(0, len(a) - 1))
    bad = draw(st.integers(2, 5).filter(lambda d: d != a[i]))
    a = a[:i] + (a[i] if a[i] != 1 else bad + 1,) + a[i + 1:]   # a[i] > 1 and != bad
    start = draw(st.integers(0, i))
    b = tuple(bad if j == i else draw(st.sampled_from([1, a[j]])) for j in range(start, len(a)))
    b = tuple(draw(st.lists(small_dims, max_size=1))) + b if draw(st.booleans()) else b
    if draw(st.booleans()):
        a, b = b, a
    with pytest.raises(ValueError):
        np.broadcast_shapes(a, b)
    return a, b


ELEMENTWISE_PAIRS = {
    "add": gc.add, "sub": gc.sub, "mul": gc.mul, "div": gc.div, "maximum": gc.maximum,
    "minimum": gc.minimum, "greater": gc.greater, "less": gc.less, "equal": gc.equal,
    "mse_loss": gc.mse_loss,
    "where(x)": lambda a, b: gc.where(a > 0, a, b),
    "where(cond)": lambda a, b: gc.where(b > 0, a, a),
}


@given(non_broadcastable_shapes(), st.sampled_from(sorted(ELEMENTWISE_PAIRS)),
       st.sampled_from(["input", "param", "constant"]))
def test_shapes_that_do_not_broadcast_raise_shape_error(shapes, op, kind):
    g = gc.Graph("bad")
    a = g.input("a", shapes[0])
    b = g.constant(np.ones(shapes[1])) if kind == "constant" else getattr(g, kind)("b", shapes[1])
    with pytest.raises(gc.ShapeError):
        ELEMENTWISE_PAIRS[op](a, b)


@st.composite
def bad_matmul_shapes(draw):
    batch = st.lists(small_dims, max_size=2)
    n, m = draw(small_dims), draw(small_dims)
    kind = draw(st.sampled_from(["inner", "batch", "vector", "scalar"]))
    if kind == "inner":
        k1, k2 = draw(st.lists(small_dims, min_size=2, max_size=2, unique=True))
        return tuple(draw(batch)) + (n, k1), tuple(draw(batch)) + (k2, m)
    if kind == "batch":
        k = draw(small_dims)
        a, b = draw(non_broadcastable_shapes())
        return a + (n, k), b + (k, m)
    if kind == "vector":        # a 1-D operand is a vector (NumPy's rule), so its size must fit too
        k1, k2 = draw(st.lists(small_dims, min_size=2, max_size=2, unique=True))
        return ((k1,), tuple(draw(batch)) + (k2, m)) if draw(st.booleans()) else (tuple(draw(batch)) + (n, k1), (k2,))
    return ((), (n, m)) if draw(st.booleans()) else ((n, m), ())


@given(bad_matmul_shapes())
def test_bad_matmul_shapes_raise_shape_error(shapes):
    g = gc.Graph("bad")
    a, b = g.param("a", shapes[0]), g.param("b", shapes[1])
    with pytest.raises(gc.ShapeError):
        a @ b


AXIS_OPS = {
    "sum": lambda x, axis: gc.sum(x, axis),
    "mean": lambda x, axis: gc.mean(x, axis, keepdims=True),
    "max": lambda x, axis: gc.max(x, axis),
    "softmax": gc.softmax,
    "log_softmax": gc.log_softmax,
    "squeeze": gc.squeeze,
    "expand_dims": gc.expand_dims,
    "transpose": gc.transpose,
}


@st.composite
def bad_axes(draw):
    """(shape, op, axis): an axis out of range, or the same axis twice (as a and a - n)."""
    shape = tuple(draw(st.lists(small_dims, max_size=3)))
    ndim = len(shape)
    op = draw(st.sampled_from(sorted(AXIS_OPS)))

    def far(n):                     # outside [-n, n)
        return draw(st.one_of(st.integers(n, n + 3), st.integers(-n - 4, -n - 1)))

    if op == "transpose":          # a repeat, or too few / too many axes (out of range: see INVALID)
        axes = list(range(ndim))
        if ndim >= 2 and draw(st.booleans()):
            axes[0] = axes[1]
        elif ndim and draw(st.booleans()):
            axes.pop()
        else:
            axes.append(draw(st.integers(0, ndim)))
        axis = tuple(axes)
    elif op in ("softmax", "log_softmax") or draw(st.booleans()):
        axis = far(ndim + 1 if op == "expand_dims" else ndim)
    else:
        n = ndim + 2 if op == "expand_dims" else ndim      # output axes of expand_dims
        if n == 0:
            axis = (far(0),)
        else:
            a = draw(st.integers(0, n - 1))
            axis = (a, a - n) if draw(st.booleans()) else (a - n, a)
        if op == "squeeze":
            shape = (1,) * ndim     # so that only the axes are wrong
    return shape, op, axis


@given(bad_axes())
def test_bad_axes_raise_shape_error(case):
    shape, op, axis = case
    g = gc.Graph("bad")
    x = g.param("x", shape)
    with pytest.raises(gc.ShapeError):
        AXIS_OPS[op](x, axis)


@given(st.lists(small_dims, min_size=1, max_size=3), st.lists(small_dims, min_size=1, max_size=3))
def test_reshape_to_another_size_raises_shape_error(shape, target):
    if np.prod(shape) == np.prod(target):
        target = target + [2]
    g = gc.Graph("bad")
    with pytest.raises(gc.ShapeError):
        gc.reshape(g.param("x", tuple(shape)), tuple(target))


@given(st.lists(small_dims, min_size=1, max_size=3), st.integers(0, 2))
def test_squeezing_a_dim_that_is_not_one_raises_shape_error(shape, i):
    i = i % len(shape)
    shape[i] = max(shape[i], 2)
    g = gc.Graph("bad")
    with pytest.raises(gc.ShapeError):
        gc.squeeze(g.param("x", tuple(shape)), i)


DTYPES = ["float64", "float32", "int64", "int32", "bool", "complex128", "uint8"]


@st.composite
def bad_feeds(draw):
    """A compiled graph of two inputs and a feed that is wrong in one way."""
    x_shape = tuple(draw(st.lists(small_dims, min_size=1, max_size=3)))
    x_dtype = draw(st.sampled_from(["float64", "float32"]))
    named = draw(st.booleans())
    g = gc.Graph("feeds", dtype=x_dtype)
    x = g.input("x", ("n",) + x_shape[1:] if named else x_shape)
    labels = g.input("y", ("n",) if named else x_shape[:1], dtype="int64")
    f = gc.compile([x * 2.0, gc.cast(labels, x_dtype) + 1.0])
    rng = np.random.default_rng(0)
    feed = {"x": rng.normal(size=x_shape).astype(x_dtype), "y": np.zeros(x_shape[:1], "int64")}
    how = draw(st.sampled_from(["shape", "rank", "dtype", "missing", "unknown", "free dim", "junk"]))
    name = draw(st.sampled_from(["x", "y"]))
    value = feed[name]
    if how == "shape":
        shape = list(value.shape)
        shape[draw(st.integers(0, value.ndim - 1))] += draw(st.integers(1, 3))
        feed[name] = np.zeros(shape, value.dtype)
    elif how == "rank":
        feed[name] = value[..., None] if draw(st.booleans()) else value[0]
    elif how == "dtype":
        feed[name] = value.astype(draw(st.sampled_from([d for d in DTYPES if d != value.dtype.name])))
    elif how == "missing":
        del feed[name]
    elif how == "unknown":
        feed[draw(st.sampled_from(["z", "X", "x_", "lr", "n"]))] = value
    elif how == "free dim":         # labels of another length than the rows of x
        feed["y"] = np.zeros(x_shape[0] + draw(st.integers(1, 2)), "int64")
    else:
        feed[name] = draw(st.sampled_from(["abc", None, {"a": 1}, b"xy", 1j, [1.0, "a"]]))
    return f, feed


@given(bad_feeds())
def test_bad_feeds_raise_feed_error(case):
    f, feed = case
    with pytest.raises(gc.FeedError):
        f(**feed)


@given(st.lists(small_dims, min_size=1, max_size=3),
       st.sampled_from(["float64", "float32"]),
       st.sampled_from(["x", "params", "lr", "W", "y"]))
def test_training_step_rejects_bad_params_and_feeds(shape, dtype, wrong):
    g = gc.Graph("train", dtype=dtype)
    x = g.input("x", tuple(shape))
    W = g.param("W", tuple(shape))
    step = gc.compile_training(gc.sum(gc.tanh(x * W)), [W])
    params = {"W": np.ones(shape, dtype)}
    feed = {"x": np.ones(shape, dtype)}
    if wrong == "x":
        feed["x"] = np.ones(shape, "float64" if dtype == "float32" else "float32")
    elif wrong == "W":
        params["W"] = np.ones(shape + [2], dtype)
    elif wrong == "y":
        feed["y"] = feed["x"]
    else:
        del (params if wrong == "params" else feed)["W" if wrong == "params" else "x"]
    before = params.get("W", np.zeros(0)).copy()
    with pytest.raises(gc.FeedError):
        step.train_step(params, lr=0.1, **feed)
    if "W" in params:
        np.testing.assert_array_equal(params["W"], before)


# Each row: an invalid use of graphcomp. It must raise a GraphError subclass, nothing else.
# Rows marked BUG raise another exception type today (or accept the input).

def _graph():
    g = gc.Graph("bad")
    return g, g.param("x", (3, 4))


def _compiled_add_of_anonymous_dims():
    g = gc.Graph("bad")
    a, b = g.input("a", (None, 2)), g.input("b", (None, 2))
    return gc.compile(a + b)


def _softmax_over_a_tuple_of_axes():
    g, x = _graph()
    y = gc.softmax(x, axis=(0, 1))       # either refuse it, or normalize over both axes
    value = np.arange(12.0).reshape(3, 4)
    got = gc.compile(y)(x=value)
    e = np.exp(value - value.max())
    np.testing.assert_allclose(got, e / e.sum())


INVALID = [
    ("sum axis 2 of 2-d", lambda g, x: gc.sum(x, 2)),
    ("sum axis (1, -1)", lambda g, x: gc.sum(x, (1, -1))),
    ("sum axis 'a'", lambda g, x: gc.sum(x, "a")),
    ("sum axis True", lambda g, x: gc.sum(x, True)),
    ("sum axis 1.0", lambda g, x: gc.sum(x, 1.0)),
    ("transpose axes ('a', 'b')", lambda g, x: gc.transpose(x, ("a", "b"))),
    ("transpose axes 1", lambda g, x: gc.transpose(x, 1)),
    ("transpose axes (1.0, 0.0)", lambda g, x: gc.transpose(x, (1.0, 0.0))),
    ("transpose axes (0, 0)", lambda g, x: gc.transpose(x, (0, 0))),
    ("transpose axes (5, 0) of 2-d", lambda g, x: gc.transpose(x, (5, 0))),
    ("reshape to None", lambda g, x: gc.reshape(x, None)),
    ("reshape to (2.0, 6)", lambda g, x: gc.reshape(x, (2.0, 6))),
    ("reshape to (-1, -1)", lambda g, x: gc.reshape(x, (-1, -1))),
    ("expand_dims axis 3", lambda g, x: gc.expand_dims(x, 3)),
    ("squeeze axis 0 of size 3", lambda g, x: gc.squeeze(x, 0)),
    ("softmax axis 2", lambda g, x: gc.softmax(x, 2)),
    ("softmax axis (0, 1)", lambda g, x: _softmax_over_a_tuple_of_axes()),
    ("pow exponent '2'", lambda g, x: gc.pow(x, "2")),
    ("pow exponent tensor", lambda g, x: gc.pow(x, x)),
    ("cast to 'bogus'", lambda g, x: gc.cast(x, "bogus")),
    ("one_hot dtype 'bogus'", lambda g, x: gc.one_hot(g.input("l", (3,), dtype="int64"), 3, "bogus")),
    ("one_hot depth 0", lambda g, x: gc.one_hot(g.input("l", (3,), dtype="int64"), 0)),
    ("one_hot of floats", lambda g, x: gc.one_hot(x, 3)),
    ("Graph dtype 'bogus'", lambda g, x: gc.Graph("b", dtype="bogus")),
    ("input dtype 'bogus'", lambda g, x: g.input("i", (2,), dtype="bogus")),
    ("input dim -1", lambda g, x: g.input("i", (-1, 2))),
    ("input dim 2.0", lambda g, x: g.input("i", (2.0,))),
    ("duplicate name", lambda g, x: g.param("x", (2,))),
    ("unknown node", lambda g, x: g["nope"]),
    ("x + 'a'", lambda g, x: x + "a"),
    ("x + None", lambda g, x: x + None),
    ("constant of a ragged list", lambda g, x: g.constant([[1.0, 2.0], [3.0]])),
    ("x * tensor of another graph", lambda g, x: x * gc.Graph("o").param("y", (3, 4))),
    ("where with a float condition", lambda g, x: gc.where(x, x, x)),
    ("nll_loss float labels", lambda g, x: gc.nll_loss(x, g.input("l", (3,)))),
    ("nll_loss labels of another length", lambda g, x: gc.nll_loss(x, g.input("l", (4,), dtype="int64"))),
    ("nll_loss reduction 'avg'", lambda g, x: gc.nll_loss(x, g.input("l", (3,), dtype="int64"), "avg")),
    ("softmax of ints", lambda g, x: gc.softmax(g.input("i", (3,), dtype="int64"))),
    ("grad of a non-scalar", lambda g, x: gc.grad(x, x)),
    ("grad for an int input", lambda g, x: gc.grad(gc.sum(x), g.input("i", (3,), dtype="int64"))),
    ("grad for a name", lambda g, x: gc.grad(gc.sum(x), "x")),
    ("grad of a float", lambda g, x: gc.grad(3.0, x)),
    ("grad_output of the wrong shape", lambda g, x: gc.grad(x, x, grad_output=g.constant(np.ones(3)))),
    ("compile []", lambda g, x: gc.compile([])),
    ("compile [3]", lambda g, x: gc.compile([3])),
    ("compile 3", lambda g, x: gc.compile(3)),
    ("compile tensors of two graphs", lambda g, x: gc.compile([x, gc.Graph("o").param("q", (1,))])),
    ("apply without a required param", lambda g, x: gc.graph.apply("pow", (x,), {})),
    ("apply with an unknown param", lambda g, x: gc.graph.apply("add", (x, x), {"foo": 1})),
    ("apply with too many args", lambda g, x: gc.graph.apply("tanh", (x, x), {})),
    ("apply unknown op", lambda g, x: gc.graph.apply("nope", (x,), {})),
    ("feed a string", lambda g, x: gc.compile(x * 2)(x="abc")),
    ("feed None", lambda g, x: gc.compile(x * 2)(x=None)),
    ("feed a ragged list", lambda g, x: gc.compile(x * 2)(x=[[1.0, 2.0], [3.0]])),
    ("feed anonymous dims that differ", lambda g, x: _compiled_add_of_anonymous_dims()(
        a=np.ones((3, 2)), b=np.ones((4, 2)))),
    ("broadcast_like to a shape x cannot broadcast to",
                 lambda g, x: gc.compile(gc.broadcast_like(x, g.input("like", (4,))))(
                     x=np.ones((3, 4)), like=np.ones(4))),
    ("train_step params as a list",
                 lambda g, x: gc.compile_training(gc.sum(x * x), [x]).train_step([np.ones((3, 4))], lr=0.1)),
]


@pytest.mark.parametrize("label, make", INVALID,
                         ids=[getattr(r, "values", r)[0] for r in INVALID])
def test_invalid_use_raises_a_graph_error(label, make):
    g, x = _graph()
    with pytest.raises(gc.GraphError):
        make(g, x)


def test_numpy_integer_axis_works_like_a_python_int():
    g, x = _graph()
    y = gc.sum(x, np.int64(1))
    value = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(gc.compile(y)(x=value), value.sum(axis=1))
