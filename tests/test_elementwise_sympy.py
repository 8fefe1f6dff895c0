"""Element-wise ops defined by sympy expressions (gc.elementwise) and the activations built on them."""
import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

import graphcomp as gc
from graphcomp.op import OPS
from graphcomp.symbolic import expression as module
from graphcomp.symbolic.activations import ACTIVATIONS

z, a, b = sp.symbols("z a b")
ACTIVATION_NAMES = [name for name, *_ in ACTIVATIONS]


pytestmark = pytest.mark.usefixtures("forget_user_ops")


def unary(op, x_shape=(4, 3), dtype="float64"):
    g = gc.Graph("t", dtype=dtype)
    x = g.param("x", x_shape)
    y = op(x, name="y")
    return g, x, y


def test_swish_value_and_gradient_against_a_hand_written_form():
    swish = gc.elementwise("swish", z / (1 + sp.exp(-z)))
    g, x, y = unary(swish)
    loss = gc.sum(y * y, name="loss")
    xs = np.random.default_rng(0).normal(size=(4, 3)) * 3
    f = gc.compile([y, *gc.grad(loss, [x])])
    value, dx = f(x=xs)
    s = 1 / (1 + np.exp(-xs))
    np.testing.assert_allclose(value, xs * s, rtol=1e-14)
    np.testing.assert_allclose(dx, 2 * xs * s * (s + xs * s * (1 - s)), rtol=1e-13)
    assert gc.check_gradients(loss, [x], {"x": xs}).ok


def test_second_derivatives_come_from_sympy_too():
    cube = gc.elementwise("cube_sin", sp.sin(z) * z**3)
    g = gc.Graph("t")
    x = g.param("x", (5,))
    loss = gc.sum(cube(x), name="loss")
    xs = np.linspace(-2, 2, 5)
    H = gc.compile(gc.hessian(loss, x))(x=xs)
    d2 = sp.lambdify(z, sp.diff(sp.sin(z) * z**3, z, 2))(xs)
    np.testing.assert_allclose(H, np.diag(d2), rtol=1e-12, atol=1e-12)


def test_ops_of_several_args_broadcast_and_get_each_partial():
    f = gc.elementwise("scaled_exp", a * sp.exp(b) + b**2, a, b)
    g = gc.Graph("t")
    A, B = g.param("A", (3, 4)), g.param("B", (4,))
    loss = gc.sum(f(A, B) ** 2, name="loss")
    rng = np.random.default_rng(1)
    feed = {"A": rng.normal(size=(3, 4)), "B": rng.normal(size=4)}
    assert gc.check_gradients(loss, [A, B], feed).ok
    value = gc.compile(f(A, B))(**feed)
    np.testing.assert_allclose(value, feed["A"] * np.exp(feed["B"]) + feed["B"] ** 2)


def test_params_are_keyword_arguments_with_defaults():
    soft = gc.elementwise("soft_step", 1 / (1 + sp.exp(-sp.Symbol("k") * z)), z, params={"k": 2.0})
    g, x, _ = unary(lambda x, name: soft(x, k=5.0, name=name))
    xs = np.linspace(-1, 1, 12).reshape(4, 3)
    np.testing.assert_allclose(gc.compile(g["y"])(x=xs), 1 / (1 + np.exp(-5 * xs)))
    loss = gc.sum(g["y"] * g["y"])
    assert gc.check_gradients(loss, [x], {"x": xs}).ok
    assert "k=5.0" in gc.compile(g["y"]).source
    with pytest.raises(gc.OpError, match="param 'k' must be a real number"):
        soft(x, k="big")


def test_the_derivative_is_derived_once_per_op_not_per_node(monkeypatch):
    calls = []
    real = module._Code.__init__

    def counting(self, op):
        calls.append(op.name)
        real(self, op)

    monkeypatch.setattr(module._Code, "__init__", counting)
    swish = gc.elementwise("swish_once", z * sp.tanh(z))
    g = gc.Graph("t")
    x = g.param("x", (3,))
    h = x
    for _ in range(50):
        h = swish(h)
    loss = gc.sum(h)
    gc.compile([loss, *gc.grad(loss, [x])])
    assert calls == ["swish_once", "swish_once'"]


def test_given_derivatives_replace_sympys():
    sq = gc.elementwise("square_given", z**2, derivatives=[2 * z])
    g, x, y = unary(sq)
    loss = gc.sum(y)
    assert "square_given'(x)" in gc.compile(gc.grad(loss, [x])).source
    assert gc.check_gradients(loss, [x], {"x": np.ones((4, 3))}).ok


def test_a_wrong_given_derivative_fails_the_gradient_check():
    sq = gc.elementwise("square_wrong", z**2, derivatives=[3 * z])
    g, x, y = unary(sq)
    loss = gc.sum(y, name="loss")
    report = gc.check_gradients(loss, [x], {"x": np.full((4, 3), 0.5)})
    assert not report.ok


def test_redefining_the_same_op_is_harmless_and_a_new_expression_replaces_it():
    first = gc.elementwise("again", z**3)
    second = gc.elementwise("again", z**3)
    assert first.__signature__ == second.__signature__
    g, x, y = unary(second)
    xs = np.full((4, 3), 2.0)
    assert np.all(gc.compile(y)(x=xs) == 8)
    gc.elementwise("again", z**2)
    assert np.all(gc.compile(y)(x=xs) == 4)       # graphs built before use the new definition


@pytest.mark.parametrize("name, expr, symbols, message", [
    ("tanh", z, (), "taken by graphcomp's own op"),
    ("softplus", z, (), "taken by graphcomp's own op"),
    ("two__under", z, (), "without '__'"),
    ("_hidden", z, (), "without '__'"),
    ("not an identifier", z, (), "Python identifier"),
    ("lonely", z**2, (z, a), "does not depend on a"),
    ("stray", z * a, (z,), r"uses \['a'\], neither a symbol nor a param"),
    ("gamma_op", sp.gamma(z), (), "cannot print gamma"),
    ("dtype_sym", sp.Symbol("dtype") * 2, (), "must be a Python identifier"),
])
def test_bad_definitions_are_op_errors(name, expr, symbols, message):
    with pytest.raises(gc.OpError, match=message):
        gc.elementwise(name, expr, *symbols)


def test_wrong_number_of_derivatives_is_an_op_error():
    with pytest.raises(gc.OpError, match="2 derivatives given for 1 symbols"):
        gc.elementwise("two_ds", z**2, derivatives=[2 * z, z])


def test_integer_inputs_compute_in_float():
    g = gc.Graph("t")
    n = g.input("n", (3,), dtype="int64")
    y = gc.softplus(n, name="y")
    assert y.dtype == "float64"
    np.testing.assert_allclose(gc.compile(y)(n=np.array([-1, 0, 1])), np.log1p(np.exp([-1.0, 0.0, 1.0])))


def test_printed_constants_keep_float32():
    op = gc.elementwise("root_two", sp.sqrt(2) * z + sp.pi * sp.exp(z / 3))
    g, x, y = unary(op, dtype="float32")
    loss = gc.sum(y)
    f = gc.compile([y, *gc.grad(loss, [x])])
    assert all(v.dtype == np.float32 for v in f(x=np.ones((4, 3), np.float32)))
    assert "1.4142135623730951" in f.source


def test_relu_from_max_has_derivative_zero_at_zero():
    op = gc.elementwise("max_relu", sp.Max(0, z))
    g, x, y = unary(op, (3,))
    d = gc.compile(gc.grad(gc.sum(y), [x])[0])(x=np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 1.0])


def test_the_clean_sigmoid_prints_a_derivative_that_stays_finite():
    # sympy's own printed derivative of 1/(1 + exp(-z)) is NaN at z = -1000 in float64
    op = gc.elementwise("plain_sigmoid", 1 / (1 + sp.exp(-z)))
    g, x, y = unary(op, (4,))
    f = gc.compile([y, *gc.grad(gc.sum(y), [x])])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, d = f(x=np.array([-1000.0, -30.0, 30.0, 1000.0]))
    np.testing.assert_allclose(value, [0.0, 1 / (1 + math.exp(30)), 1 / (1 + math.exp(-30)), 1.0])
    sigma_prime_30 = math.exp(-30) / (1 + math.exp(-30)) ** 2       # σ'(±30), without cancellation
    np.testing.assert_allclose(d, [0.0, sigma_prime_30, sigma_prime_30, 0.0], rtol=1e-14, atol=1e-300)


# ---- stability sweeps of every activation, value and gradient, both dtypes ---------------------

DOMAIN = {"log1p": (-0.999, None), "expm1": (None, {"float64": 700.0, "float32": 88.0})}


@pytest.mark.parametrize("dtype, limit", [("float64", 1e3), ("float32", 1e2)])
@pytest.mark.parametrize("name", [*ACTIVATION_NAMES, "sigmoid", "tanh", "relu"])     # and the hand-written ones
def test_activation_is_finite_without_warnings(name, dtype, limit):
    low, high = DOMAIN.get(name, (None, None))
    low = -limit if low is None else low
    high = limit if high is None else high[dtype]
    xs = np.concatenate([np.linspace(low, high, 101), [0.0, -1e-8, 1e-8]]).astype(dtype)
    g, x, y = unary(getattr(gc, name), xs.shape, dtype)
    f = gc.compile([y, *gc.grad(gc.sum(y), [x])])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, d = f(x=xs)
    assert value.dtype == dtype and d.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(d).all()


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_matches_sympy_in_high_precision(name):
    """The printed (rewritten) function and derivative against the clean expression in mpmath."""
    op = OPS[name]
    xs = np.array([-20.0, -3.5, -0.25, 0.75, 4.0, 20.0])
    if name == "log1p":
        xs = np.abs(xs)
    g, x, y = unary(getattr(gc, name), xs.shape)
    value, d = gc.compile([y, *gc.grad(gc.sum(y), [x])])(x=xs)
    params = {c: v for c, v in op.constants.items()}
    f = sp.lambdify(z, op.expr.subs(params), "mpmath")
    df = sp.lambdify(z, sp.diff(op.expr, z).subs(params), "mpmath")
    with mpmath.workdps(50):
        for i, v in enumerate(xs):
            assert value[i] == pytest.approx(float(f(mpmath.mpf(v))), rel=1e-12, abs=1e-300)
            assert d[i] == pytest.approx(float(df(mpmath.mpf(v))), rel=1e-12, abs=1e-300)


def test_gelu_needs_scipy_and_the_module_says_so(tmp_path):
    g, x, y = unary(gc.gelu, (3,))
    f = gc.compile(y)
    assert "import scipy.special" in f.source
    assert "needs NumPy and scipy.special" in f.source
    path = f.save(tmp_path / "gelu.py")
    script = (f"import sys; sys.modules['graphcomp'] = None; import runpy, numpy as np; "
              f"m = runpy.run_path({str(path)!r}); print(m['run'](np.array([0.0, 1.0, -1.0])))")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "0.84134475" in done.stdout


def test_short_expressions_are_written_inline_and_long_ones_as_helpers():
    g, x, _ = unary(gc.softplus)
    y2 = gc.elu(x, name="y2")
    source = gc.compile([g["y"], y2]).source
    assert "y = np.logaddexp(0, x)" in source
    assert "def _elu(z, alpha):" in source and "y2 = _elu(x, alpha=1.0)" in source
    assert "np.expm1(np.minimum(0, z))" in source       # clamped to its own branch: no overflow


def test_a_user_node_named_like_a_helper_gets_another_identifier():
    op = gc.elementwise("long_one", sp.exp(-z**2) * sp.cos(z) + z**3 * sp.sin(z))
    g = gc.Graph("t")
    x = g.param("_long_one", (3,))
    y = op(x, name="y")
    f = gc.compile(y)
    assert "def _long_one(z):" in f.source
    np.testing.assert_allclose(f(_long_one=np.zeros(3)), np.ones(3))


def test_check_gradients_names_the_node_whose_given_derivative_is_wrong():
    """A user-defined op with a wrong derivative, two layers deep in a network: the check names it."""
    soft = gc.elementwise("soft_wrong", sp.log(1 + sp.exp(z)), derivatives=[1 / (1 + sp.exp(z))])
    g = gc.Graph("deep")
    x, t = g.input("x", (None, 3)), g.input("t", (None, 2))
    W1, W2, W3 = g.param("W1", (3, 4)), g.param("W2", (4, 4)), g.param("W3", (4, 2))
    h1 = gc.tanh(x @ W1, name="h1")
    h2 = soft(h1 @ W2, name="h2")
    loss = gc.mse_loss(h2 @ W3, t, name="loss")
    rng = np.random.default_rng(4)
    feed = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 2)), "W1": rng.normal(size=(3, 4)),
            "W2": rng.normal(size=(4, 4)), "W3": rng.normal(size=(4, 2))}
    report = gc.check_gradients(loss, [W1, W2, W3], feed)
    assert not report.ok
    assert report.faulty == ["h2"]
    assert "soft_wrong" in str(report)
