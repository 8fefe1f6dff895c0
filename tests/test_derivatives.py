"""jvp, jacobian, hessian, hvp: against central differences of the generated code (float64), and each other.

Each table row (``Fn``) declares a function of some float params (the primals)
and of fixed inputs; it is built into a fresh graph, fed fixed random values
and run through ``gc.compile``. The numeric side is always the generated
forward (or gradient) code, moved by ``eps`` along a direction.
"""
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import graphcomp as gc

EPS = 1e-6               # central-difference step
RTOL = 1e-6              # against central differences: |a - n| <= RTOL * (|n| + max |n|)
EXACT = 1e-10            # between two analytic results (symmetry, jvp vs J @ t, ...)
SIZES = {None: 5, "n": 4}   # the values free dims are fed with
SIGNED = "signed"        # |x| in [0.25, 2] with a random sign: away from kinks and poles


@dataclass(frozen=True)
class Labels:
    """An int64 input of ``shape`` with values in [0, high)."""

    shape: tuple
    high: int


@dataclass(frozen=True)
class Fn:
    """``y = build(*primals, *fixed)``: primals are float params, fixed are inputs (float shape or Labels)."""

    label: str
    primals: dict
    build: object
    fixed: dict = field(default_factory=dict)

    def __str__(self):
        return self.label.replace(" ", "")


# ---- the tables ------------------------------------------------------------------------------

JVP_CASES = [
    # element-wise chains and division
    Fn("tanh-exp", {"x": (3, 4)}, lambda x: gc.exp(gc.tanh(x) * 0.5)),
    Fn("sigmoid(x*x)-x*x", {"x": (3, 4)}, lambda x: gc.sigmoid(x * x) - x * x),
    Fn("a/b+tanh(a)/(b*b)", {"a": (3, 4), "b": (3, 4)}, lambda a, b: a / b + gc.tanh(a) / (b * b)),
    Fn("2/x+x/3", {"x": (4,)}, lambda x: 2.0 / x + x / 3.0),
    Fn("x**3-sqrt(x*x)", {"x": (2, 3)}, lambda x: x ** 3 - gc.sqrt(x * x) + gc.log(x * x)),
    # broadcasting
    Fn("broadcast-add", {"a": (3, 4), "b": (4,), "c": (3, 1)}, lambda a, b, c: gc.tanh(a + b) * c + b),
    Fn("scalar-broadcast", {"s": (), "x": (2, 3)}, lambda s, x: gc.exp(s * x) + s),
    # reductions
    Fn("sum-axis1", {"x": (2, 3, 4)}, lambda x: gc.sum(gc.tanh(x), axis=1)),
    Fn("sum-all", {"x": (3, 4)}, lambda x: gc.sum(gc.sigmoid(x))),
    Fn("mean-axes-keepdims", {"x": (2, 3, 4)}, lambda x: gc.mean(x * x, axis=(0, 2), keepdims=True)),
    Fn("mean-all", {"x": (3, 4)}, lambda x: gc.mean(gc.exp(x))),
    Fn("max-axis-1", {"x": (3, 4)}, lambda x: gc.max(x * 1.5, axis=-1)),
    Fn("max-all", {"x": (3, 4)}, lambda x: gc.max(gc.tanh(x))),
    # matmul
    Fn("matmul", {"a": (3, 4), "b": (4, 2)}, lambda a, b: a @ b),
    Fn("x@x.T", {"x": (3, 4)}, lambda x: x @ x.T),
    Fn("matmul-column", {"A": (3, 4), "v": (4, 1)}, lambda A, v: gc.tanh(A @ v)),
    Fn("matmul-batched", {"a": (2, 3, 4), "b": (2, 4, 5)}, lambda a, b: gc.tanh(a @ b)),
    Fn("matmul-batched-broadcast", {"a": (2, 3, 4), "b": (4, 5)}, lambda a, b: a @ b),
    # softmax family, a small network and losses
    Fn("softmax", {"x": (3, 4)}, lambda x: gc.softmax(x, axis=-1)),
    Fn("log_softmax-axis0", {"x": (3, 4)}, lambda x: gc.log_softmax(x * 2.0, axis=0)),
    Fn("mlp-relu", {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)},
       lambda W1, b1, W2, b2, x: gc.relu(x @ W1 + b1) @ W2 + b2, fixed={"x": (5, 4)}),
    Fn("cross_entropy", {"W": (4, 3), "b": (3,)},
       lambda W, b, x, labels: gc.cross_entropy(x @ W + b, labels),
       fixed={"x": (5, 4), "labels": Labels((5,), 3)}),
    Fn("nll_loss(log_softmax)-sum", {"z": (5, 3)},
       lambda z, labels: gc.nll_loss(gc.log_softmax(z, axis=-1), labels, reduction="sum"),
       fixed={"labels": Labels((5,), 3)}),
    Fn("mse_loss", {"p": (3, 4)}, lambda p, target: gc.mse_loss(p * p, target),
       fixed={"target": (3, 4)}),
    # reshape / transpose
    Fn("reshape", {"x": (2, 3, 4)}, lambda x: gc.reshape(gc.tanh(x), (4, -1))),
    Fn("transpose", {"x": (2, 3, 4)},
       lambda x: gc.transpose(x, (2, 0, 1)) * gc.exp(gc.transpose(x, (2, 0, 1)))),
    Fn("reshape@W.T", {"x": (6,), "W": (4, 3)}, lambda x, W: x.reshape((2, 3)) @ W.T),
    # a primal y does not read: contributes zero
    Fn("unused-primal", {"x": (3,), "unused": (2, 2)}, lambda x, unused: gc.tanh(x)),
    # free batch dims, fed with concrete sizes
    Fn("free-batch-input", {"W": (4, 3), "b": (3,)}, lambda W, b, x: gc.tanh(x @ W + b),
       fixed={"x": (None, 4)}),
    Fn("free-batch-primal", {"x": ("n", 4), "W": (4, 3)}, lambda x, W: gc.softmax(x @ W, axis=-1)),
    Fn("free-batch-primal-None", {"x": (None, 4), "b": (4,)}, lambda x, b: gc.tanh(x + b) * x),
    Fn("free-batch-loss", {"z": ("n", 3)}, lambda z, labels: gc.cross_entropy(z, labels),
       fixed={"labels": Labels(("n",), 3)}),
]

JACOBIAN_CASES = [
    Fn("vector->vector", {"x": (4,)}, lambda x, A: gc.tanh(gc.sum(A * x, axis=1)), fixed={"A": (3, 4)}),
    Fn("matrix->vector", {"X": (3, 4)}, lambda X, v: gc.sum(gc.sigmoid(X) * v, axis=-1), fixed={"v": (4,)}),
    Fn("matrix->matrix", {"X": (3, 2)}, lambda X, W: gc.tanh(X @ W), fixed={"W": (2, 2)}),
    Fn("scalar->matrix", {"s": ()}, lambda s, C: gc.exp(s * C) / (1.0 + s * s), fixed={"C": (2, 3)}),
    Fn("elementwise-(2,3)->(2,3)", {"x": (2, 3)}, lambda x: gc.tanh(x) * x),
    Fn("softmax-(4,)->(4,)", {"x": (4,)}, lambda x: gc.softmax(x)),
    Fn("matrix->scalar", {"W": (3, 2)}, lambda W, x: gc.sum(gc.tanh(x @ W)), fixed={"x": (4, 3)}),
]

HESSIAN_CASES = [
    Fn("sum(tanh(Aw)**2)", {"w": (4,)}, lambda w, A: gc.sum(gc.tanh(gc.sum(A * w, axis=1)) ** 2),
       fixed={"A": (3, 4)}),
    Fn("sum(tanh(A@W)**2)", {"W": (4, 2)}, lambda W, A: gc.sum(gc.tanh(A @ W) ** 2), fixed={"A": (3, 4)}),
    Fn("log-sum-exp", {"w": (5,)}, lambda w: gc.log(gc.sum(gc.exp(w)))),
    Fn("log-sum-exp(x@W)", {"W": (2, 3)}, lambda W, x: gc.log(gc.sum(gc.exp(x @ W))), fixed={"x": (4, 2)}),
    Fn("mlp-cross_entropy-W1", {"W1": (3, 2)},
       lambda W1, x, b1, W2, labels: gc.cross_entropy(gc.relu(x @ W1 + b1) @ W2, labels),
       fixed={"x": (5, 3), "b1": (2,), "W2": (2, 4), "labels": Labels((5,), 4)}),
    Fn("scalar", {"s": ()}, lambda s: gc.exp(s * 0.5) * gc.tanh(s)),
]

# second derivatives of max and relu are zero almost everywhere: checked once, on their own
SMOOTH = [c for c in JVP_CASES if not c.label.startswith(("max", "mlp-relu"))]

# ---- building and running ----------------------------------------------------------------------


def concrete(shape):
    return tuple(SIZES.get(d, d) for d in shape)


def draw(rng, shape):
    return np.asarray(rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


def build(fn):
    """Return ``(graph, y, primals, feed, rng)``: a fresh graph, seeded by the row's label."""
    g = gc.Graph("t")
    rng = np.random.default_rng(zlib.crc32(fn.label.encode()))
    primals, feed = [], {}
    for name, shape in fn.primals.items():
        primals.append(g.param(name, shape))
        feed[name] = draw(rng, concrete(shape))
    tensors = list(primals)
    for name, spec in fn.fixed.items():
        if isinstance(spec, Labels):
            tensors.append(g.input(name, spec.shape, dtype="int64"))
            feed[name] = rng.integers(0, spec.high, concrete(spec.shape))
        else:
            tensors.append(g.input(name, spec))
            feed[name] = draw(rng, concrete(spec))
    return g, fn.build(*tensors), primals, feed, rng


def tangent_inputs(g, fn, feed, rng, prefix="t_"):
    """One tangent input per primal, declared with the primal's shape, fed with normal values."""
    tangents = []
    for name, shape in fn.primals.items():
        tangents.append(g.input(prefix + name, shape))
        feed[prefix + name] = rng.normal(size=concrete(shape))
    return tangents


def run(outputs, feed):
    """Compile ``outputs`` and run them on the values of ``feed`` they need."""
    f = gc.compile(outputs)
    return f(**{k: feed[k] for k in f.inputs})


def moved(feed, direction, step):
    """``feed`` with ``step * direction[name]`` added to the named values."""
    return {k: v + step * direction[k] if k in direction else v for k, v in feed.items()}


def differences(f, feed, direction, eps=EPS):
    """(f(x + eps t) - f(x - eps t)) / 2 eps for a compiled ``f``; ``direction``: name -> t."""
    up, down = moved(feed, direction, eps), moved(feed, direction, -eps)
    return (np.asarray(f(**{k: up[k] for k in f.inputs})) -
            np.asarray(f(**{k: down[k] for k in f.inputs}))) / (2 * eps)


def central(y, feed, direction):
    """The directional derivative of ``y`` by central differences of its generated code."""
    return differences(gc.compile(y), feed, direction)


def central_jacobian(y, x, feed):
    """dy/dx by central differences along each basis vector of x: shape y.shape + x.shape."""
    f = gc.compile(y)
    shape = feed[x.name].shape
    columns = []
    for i in range(int(np.prod(shape))):
        e = np.zeros(shape)
        e.flat[i] = 1.0
        columns.append(differences(f, feed, {x.name: e}))
    out_shape = np.shape(columns[0])
    return np.stack(columns, axis=-1).reshape(out_shape + shape)


def assert_close(got, want, rtol=RTOL):
    """Element-wise, with a tolerance relative to the entry plus one relative to the largest entry."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    scale = np.max(np.abs(want), initial=0.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale + 1e-12)


def weights(g, shape, rng):
    """A fixed random float constant of ``shape`` (a Python number for a scalar)."""
    return g.constant(rng.normal(size=concrete(shape))) if shape else float(rng.normal())


def is_static(shape):
    return all(isinstance(d, int) for d in shape)


def declared(shape):
    """A shape ``g.input`` takes for a node's shape: its free dims as None (broadcasting ties them)."""
    return tuple(d if isinstance(d, int) else None for d in shape)


# ---- jvp --------------------------------------------------------------------------------------


def test_case_ids_are_unique():
    for table in (JVP_CASES, JACOBIAN_CASES, HESSIAN_CASES):
        assert len({str(c) for c in table}) == len(table)


@pytest.mark.parametrize("fn", JVP_CASES, ids=str)
def test_jvp_matches_central_differences(fn):
    g, y, primals, feed, rng = build(fn)
    tangents = tangent_inputs(g, fn, feed, rng)
    t = gc.jvp(y, primals, tangents)
    assert isinstance(t, gc.Tensor) and t.dtype == y.dtype and t.ndim == y.ndim
    if is_static(y.shape):
        assert t.shape == y.shape
    got = run(t, feed)
    want = central(y, feed, {p.name: feed["t_" + p.name] for p in primals})
    assert np.max(np.abs(want)) > 1e-3          # the check is not trivially about zeros
    assert_close(got, want)


@pytest.mark.parametrize("fn", JVP_CASES, ids=str)
def test_jvp_is_the_transpose_of_grad(fn):
    """<c, J t> == <J^T c, t>: forward and reverse mode agree to rounding."""
    g, y, primals, feed, rng = build(fn)
    tangents = tangent_inputs(g, fn, feed, rng)
    t = gc.jvp(y, primals, tangents)
    ct = g.input("ct", declared(y.shape))
    feed["ct"] = rng.normal(size=np.shape(run(y, feed)))
    vjps = gc.grad(gc.sum(y * ct), primals)
    got_t, *got_vjps = run([t, *vjps], feed)
    forward = np.sum(got_t * feed["ct"])
    reverse = sum(np.sum(v * feed["t_" + p.name]) for v, p in zip(got_vjps, primals, strict=True))
    np.testing.assert_allclose(forward, reverse, rtol=EXACT)


def test_jvp_of_unused_primal_is_zero():
    fn = next(c for c in JVP_CASES if c.label == "unused-primal")
    g, y, (x, unused), feed, rng = build(fn)
    t = gc.jvp(y, unused, g.input("t_unused", (2, 2)))
    feed["t_unused"] = rng.normal(size=(2, 2))
    got = run(t, feed)
    assert np.shape(got) == (3,) and np.asarray(got).dtype == np.float64
    np.testing.assert_array_equal(got, np.zeros(3))


def test_jvp_single_tensor_form_matches_list_form():
    fn = next(c for c in JVP_CASES if c.label == "tanh-exp")
    g, y, (x,), feed, rng = build(fn)
    (tx,) = tangent_inputs(g, fn, feed, rng)
    single, listed = gc.jvp(y, x, tx), gc.jvp(y, [x], [tx])
    assert isinstance(single, gc.Tensor) and single.shape == y.shape
    a, b = run([single, listed], feed)
    np.testing.assert_array_equal(a, b)


def test_jvp_free_batch_runs_at_several_batch_sizes():
    fn = next(c for c in JVP_CASES if c.label == "free-batch-input")
    g, y, primals, feed, rng = build(fn)
    t = gc.jvp(y, primals, tangent_inputs(g, fn, feed, rng))
    for n in (1, 3, 8):
        feed["x"] = draw(rng, (n, 4))
        got = run(t, feed)
        assert np.shape(got) == (n, 3)
        assert_close(got, central(y, feed, {p.name: feed["t_" + p.name] for p in primals}))


@pytest.mark.parametrize("kind", ["array", "number", "expression"])
def test_jvp_tangent_as_array_number_or_expression(kind):
    """Tangents may be NumPy arrays or numbers (constants) or any Tensor of the graph."""
    g = gc.Graph("t")
    s, W = g.param("s", ()), g.param("W", (3, 2))
    x = g.input("x", (4, 3))
    y = gc.tanh(x @ W * s) + s * s
    rng = np.random.default_rng(7)
    feed = {"s": np.array(0.7), "W": draw(rng, (3, 2)), "x": draw(rng, (4, 3))}
    tW = rng.normal(size=(3, 2))
    if kind == "array":
        t, direction = gc.jvp(y, [s, W], [0.5, tW]), {"s": 0.5, "W": tW}
        assert set(gc.compile(t).inputs) == {"s", "W", "x"}       # the tangents became constants
    elif kind == "number":
        t, direction = gc.jvp(y, s, 1.0), {"s": 1.0}
    else:                     # tangent of W built from nodes: W itself times 2
        t, direction = gc.jvp(y, W, W * 2.0), {"W": 2.0 * feed["W"]}
    assert_close(run(t, feed), central(y, feed, direction))


def test_jvp_is_linear_in_the_tangent_and_can_be_built_twice():
    fn = next(c for c in JVP_CASES if c.label == "matmul-batched")
    g, y, primals, feed, rng = build(fn)
    ta = tangent_inputs(g, fn, feed, rng, "ta_")
    tb = tangent_inputs(g, fn, feed, rng, "tb_")
    ja, jb = gc.jvp(y, primals, ta), gc.jvp(y, primals, tb)
    jab = gc.jvp(y, primals, [a + b * 3.0 for a, b in zip(ta, tb, strict=True)])
    a, b, ab = run([ja, jb, jab], feed)
    assert_close(ab, a + 3.0 * b, rtol=EXACT)


# ---- jacobian ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", JACOBIAN_CASES, ids=str)
def test_jacobian_matches_stacked_central_differences(fn):
    g, y, (x,), feed, rng = build(fn)
    J = gc.jacobian(y, x)
    assert isinstance(J, gc.Tensor) and J.shape == y.shape + x.shape and J.dtype == "float64"
    got = run(J, feed)
    want = central_jacobian(y, x, feed)
    assert want.shape == y.shape + x.shape and np.max(np.abs(want)) > 1e-3
    assert_close(got, want)


@pytest.mark.parametrize("fn", JACOBIAN_CASES, ids=str)
def test_jvp_is_jacobian_contracted_with_the_tangent(fn):
    g, y, (x,), feed, rng = build(fn)
    (tx,) = tangent_inputs(g, fn, feed, rng)
    J, t = run([gc.jacobian(y, x), gc.jvp(y, x, tx)], feed)
    want = np.tensordot(J, feed["t_" + x.name], axes=x.ndim)
    assert_close(t, want, rtol=EXACT)


def test_jacobian_of_elementwise_function_is_diagonal():
    fn = next(c for c in JACOBIAN_CASES if c.label.startswith("elementwise"))
    g, y, (x,), feed, rng = build(fn)
    J = np.asarray(run(gc.jacobian(y, x), feed)).reshape(6, 6)
    v = feed["x"].reshape(-1)
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), np.zeros((6, 6)))
    np.testing.assert_allclose(np.diag(J), np.tanh(v) + v * (1 - np.tanh(v) ** 2), rtol=1e-12)


# ---- hessian and hvp ---------------------------------------------------------------------------


def hessian_numeric(loss, w, feed):
    """Central differences of the generated gradient of ``loss``: shape w.shape + w.shape."""
    return central_jacobian(gc.grad(loss, w), w, feed)


@pytest.mark.parametrize("fn", HESSIAN_CASES, ids=str)
def test_hessian_matches_central_differences_of_the_gradient(fn):
    g, loss, (w,), feed, rng = build(fn)
    H = gc.hessian(loss, w)
    assert isinstance(H, gc.Tensor) and H.shape == w.shape + w.shape
    got = run(H, feed)
    want = hessian_numeric(loss, w, feed)
    assert np.max(np.abs(want)) > 1e-3
    assert_close(got, want)


@pytest.mark.parametrize("fn", HESSIAN_CASES, ids=str)
def test_hessian_is_symmetric(fn):
    g, loss, (w,), feed, rng = build(fn)
    n = int(np.prod(w.shape))
    H = np.asarray(run(gc.hessian(loss, w), feed)).reshape(n, n)
    assert_close(H, H.T, rtol=EXACT)


@pytest.mark.parametrize("fn", HESSIAN_CASES, ids=str)
def test_hessian_is_the_jacobian_of_the_gradient(fn):
    g, loss, (w,), feed, rng = build(fn)
    H, J = run([gc.hessian(loss, w), gc.jacobian(gc.grad(loss, w), w)], feed)
    assert_close(H, J, rtol=EXACT)


@pytest.mark.parametrize("fn", HESSIAN_CASES, ids=str)
def test_hvp_matches_hessian_and_central_differences(fn):
    g, loss, (w,), feed, rng = build(fn)
    (v,) = tangent_inputs(g, fn, feed, rng, "v_")
    hv = gc.hvp(loss, w, v)
    assert isinstance(hv, gc.Tensor) and hv.shape == w.shape
    got, H = run([hv, gc.hessian(loss, w)], feed)
    assert np.shape(got) == w.shape
    assert_close(got, np.tensordot(H, feed[v.name], axes=w.ndim), rtol=EXACT)
    assert_close(got, central(gc.grad(loss, w), feed, {w.name: feed[v.name]}))


def test_hvp_with_array_direction():
    fn = HESSIAN_CASES[0]
    g, loss, (w,), feed, rng = build(fn)
    v = rng.normal(size=w.shape)
    hv = gc.hvp(loss, w, v)
    assert gc.compile(hv).inputs == gc.compile(loss).inputs      # v became a constant
    assert_close(run(hv, feed), central(gc.grad(loss, w), feed, {w.name: v}))


def test_mlp_hessian_has_the_weight_matrix_shape_twice():
    fn = next(c for c in HESSIAN_CASES if c.label.startswith("mlp"))
    g, loss, (W1,), feed, rng = build(fn)
    z = feed["x"] @ feed["W1"] + feed["b1"]
    assert np.min(np.abs(z)) > 1e-3             # relu kinks far from the eps steps
    H = gc.hessian(loss, W1)
    assert H.shape == (3, 2, 3, 2)
    assert np.shape(run(H, feed)) == (3, 2, 3, 2)


# ---- differentiating again --------------------------------------------------------------------


@pytest.mark.parametrize("fn", SMOOTH, ids=str)
def test_grad_of_jvp_matches_central_differences(fn):
    """d/dW and d/dt of sum(jvp(y, W, t) * c): second derivatives and the VJP, against differences."""
    g, y, primals, feed, rng = build(fn)
    tangents = tangent_inputs(g, fn, feed, rng)
    t = gc.jvp(y, primals, tangents)
    # a constant cannot have a free dim: size 1 there, broadcast
    c = weights(g, tuple(d if isinstance(d, int) else 1 for d in y.shape), rng)
    loss = gc.sum(t * c)
    report = gc.check_gradients(loss, [*primals, *tangents], feed, eps=EPS, rtol=RTOL, atol=1e-8)
    assert report.ok, f"\n{report}"
    assert all(r.max_rel_error <= RTOL for r in report.rows), f"\n{report}"


def test_grad_of_jvp_of_relu_network():
    fn = next(c for c in JVP_CASES if c.label == "mlp-relu")
    g, y, primals, feed, rng = build(fn)
    z = feed["x"] @ feed["W1"] + feed["b1"]
    assert np.min(np.abs(z)) > 1e-3             # relu kinks far from the eps steps
    tangents = tangent_inputs(g, fn, feed, rng)
    loss = gc.sum(gc.jvp(y, primals, tangents) * g.constant(rng.normal(size=(5, 2))))
    report = gc.check_gradients(loss, [*primals, *tangents], feed, rtol=RTOL, atol=1e-8)
    assert report.ok, f"\n{report}"


@pytest.mark.parametrize("fn", HESSIAN_CASES, ids=str)
def test_grad_of_sum_of_hvp_matches_central_differences(fn):
    g, loss, (w,), feed, rng = build(fn)
    (v,) = tangent_inputs(g, fn, feed, rng, "v_")
    total = gc.sum(gc.hvp(loss, w, v))
    dw, dv = gc.grad(total, [w, v])
    assert dw.shape == w.shape and dv.shape == w.shape
    report = gc.check_gradients(total, [w, v], feed, rtol=RTOL, atol=1e-8)
    assert report.ok, f"\n{report}"
    H = np.asarray(run(gc.hessian(loss, w), feed))
    assert_close(run(dv, feed), np.tensordot(np.ones(w.shape), H, axes=w.ndim), rtol=EXACT)


# ---- generated code size ------------------------------------------------------------------------


def size_tanh_rows(n):
    g = gc.Graph("t")
    x = g.param("x", (4,))
    return gc.jacobian(gc.tanh(gc.sum(g.input("A", (n, 4)) * x, axis=1)), x)


def size_elementwise(n):
    g = gc.Graph("t")
    x = g.param("x", (n,))
    return gc.jacobian(gc.sigmoid(x) * x, x)


def size_softmax(n):
    g = gc.Graph("t")
    x = g.param("x", (n,))
    return gc.jacobian(gc.softmax(x * 2.0), x)


def size_hessian(n):
    g = gc.Graph("t")
    w = g.param("w", (n,))
    return gc.hessian(gc.sum(gc.tanh(gc.sum(g.input("A", (3, n)) * w, axis=1)) ** 2), w)


@pytest.mark.parametrize("make", [size_tanh_rows, size_elementwise, size_softmax, size_hessian],
                         ids=lambda f: f.__name__)
def test_generated_code_does_not_unroll_per_element(make):
    """50 elements instead of 5 must not mean ~10x the code: no statement (or literal) per element."""
    chars_5, chars_50 = len(gc.compile(make(5)).source), len(gc.compile(make(50)).source)
    assert chars_50 < 2 * chars_5


# ---- errors -------------------------------------------------------------------------------------


def jvp_tangent_shape(g):
    weights = g.param("weights", (3,))
    gc.jvp(gc.tanh(weights), weights, g.input("tangent", (4,)))


def jvp_array_tangent_shape(g):
    weights = g.param("weights", (3, 2))
    gc.jvp(gc.sum(weights), weights, np.ones((2, 3)))


def jvp_one_bad_tangent_of_two(g):
    weights, b = g.param("weights", (3,)), g.param("b", (3,))
    gc.jvp(weights * b, [b, weights], [g.input("tb", (3,)), g.input("tangent", (3, 1))])


def jvp_tangent_of_another_graph(g):
    weights = g.param("weights", (3,))
    gc.jvp(gc.tanh(weights), weights, gc.Graph("other").input("tangent", (3,)))


def jacobian_free_x(g):
    weights = g.input("weights", (None, 3))
    gc.jacobian(gc.tanh(weights), weights)


def jacobian_named_free_x(g):
    weights = g.input("weights", ("batch", 3))
    gc.jacobian(gc.sum(weights, axis=0), weights)


def jacobian_free_y(g):
    weights = g.param("weights", (3,))
    gc.jacobian(g.input("x", (None, 3)) * weights, weights)


def hessian_free_w(g):
    weights = g.input("weights", (None,))
    gc.hessian(gc.sum(weights * weights), weights)


def hessian_non_scalar(g):
    weights = g.param("weights", (3,))
    gc.hessian(gc.tanh(weights), weights)


def hvp_direction_shape(g):
    weights = g.param("weights", (3,))
    gc.hvp(gc.sum(gc.tanh(weights)), weights, g.input("tangent", (2,)))


ERRORS = [
    (jvp_tangent_shape, gc.ShapeError),
    (jvp_array_tangent_shape, gc.ShapeError),
    (jvp_one_bad_tangent_of_two, gc.ShapeError),
    (jvp_tangent_of_another_graph, gc.GraphError),
    (jacobian_free_x, gc.GraphError),
    (jacobian_named_free_x, gc.GraphError),
    (jacobian_free_y, gc.GraphError),
    (hessian_free_w, gc.GraphError),
    (hessian_non_scalar, gc.GradientError),
    (hvp_direction_shape, gc.GraphError),
]


@pytest.mark.parametrize("call, error", ERRORS, ids=[c.__name__ for c, _ in ERRORS])
def test_errors(call, error):
    with pytest.raises(error) as info:
        call(gc.Graph("t"))
    # errors name the node at fault, or the y being differentiated
    assert any(name in str(info.value) for name in ("weights", "tangent", "tanh", "mul", "sum"))
