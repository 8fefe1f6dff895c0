"""gc.derivative: formulas rendered from the gradient graph, evaluated without generated code."""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import graphcomp as gc

from founding import build, feed

GOLDEN = Path(__file__).parent / "golden"
# all-different sizes, so a transposition error cannot hide
N, N_IN, N_HIDDEN, N_OUT = 7, 5, 4, 3


pytestmark = pytest.mark.usefixtures("forget_user_ops")


def founding():
    g, loss, params = build(N_IN, N_HIDDEN, N_OUT)
    return g, loss, params, feed(batch=N, n_in=N_IN, n_hidden=N_HIDDEN, n_out=N_OUT)


def compiled_gradient(loss, p, values):
    f = gc.compile(gc.grad(loss, p))
    return f(**{k: values[k] for k, *_ in f.module.INPUTS})


def assert_formula_matches_generated_code(loss, params, values):
    for p in params:
        d = gc.derivative(loss, p)
        np.testing.assert_allclose(d.evaluate(values), compiled_gradient(loss, p, values), rtol=1e-10,
                                   atol=1e-13, err_msg=str(d))
        np.testing.assert_allclose(d.expand().evaluate(values), d.evaluate(values), rtol=1e-12, atol=1e-14)


def test_founding_network_reads_like_the_textbook():
    g, loss, (W1, b1, W2, b2), _ = founding()
    assert str(gc.derivative(loss, W1)) == (GOLDEN / "derivative_W1.txt").read_text().rstrip("\n")
    assert gc.derivative(loss, W1).latex() == (GOLDEN / "derivative_W1.tex").read_text().rstrip("\n")
    assert str(gc.derivative(loss, b1)).splitlines()[0] == "∂loss/∂b1 = 𝟏ᵀ(∂loss/∂h ⊙ 𝟙[h > 0])"
    assert str(gc.derivative(loss, W2)).splitlines()[0] == "∂loss/∂W2 = hᵀ·∂loss/∂logits"


def test_founding_network_formulas_equal_the_generated_gradients():
    g, loss, params, values = founding()
    assert_formula_matches_generated_code(loss, params, values)


def test_least_squares():
    g = gc.Graph("ls")
    X, t = g.input("X", (None, 4)), g.input("t", (None, 2))
    W = g.param("W", (4, 2))
    loss = gc.mean((X @ W - t) ** 2, name="loss")
    rng = np.random.default_rng(0)
    values = {"X": rng.normal(size=(6, 4)), "t": rng.normal(size=(6, 2)), "W": rng.normal(size=(4, 2))}
    assert_formula_matches_generated_code(loss, [W], values)


def test_logistic_regression():
    g = gc.Graph("logreg")
    X, t = g.input("X", (None, 3)), g.input("t", (None, 1))
    w, b = g.param("w", (3, 1)), g.param("b", (1,))
    p = gc.sigmoid(X @ w + b, name="p")
    loss = gc.mean(-(t * gc.log(p) + (1 - t) * gc.log(1 - p)), name="loss")
    rng = np.random.default_rng(1)
    values = {"X": rng.normal(size=(8, 3)), "t": rng.integers(0, 2, (8, 1)).astype(float),
              "w": rng.normal(size=(3, 1)), "b": rng.normal(size=1)}
    assert_formula_matches_generated_code(loss, [w, b], values)


def test_tanh_layer_with_mse_and_a_sympy_defined_activation():
    z = sp.Symbol("z")
    swish = gc.elementwise("swish", z / (1 + sp.exp(-z)))
    g = gc.Graph("tanh")
    x, t = g.input("x", (None, 3)), g.input("t", (None, 2))
    W1, W2 = g.param("W1", (3, 4)), g.param("W2", (4, 2))
    h = gc.tanh(swish(x @ W1, name="a") @ W2, name="h")
    loss = gc.mse_loss(h, t, name="loss")
    rng = np.random.default_rng(2)
    values = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 2)), "W1": rng.normal(size=(3, 4)),
              "W2": rng.normal(size=(4, 2))}
    assert_formula_matches_generated_code(loss, [W1, W2], values)
    assert "swish'(" in str(gc.derivative(loss, W1))


def test_a_mean_reduction():
    g = gc.Graph("mean")
    x = g.param("x", (3, 4))
    loss = gc.sum(gc.mean(x * x, axis=1) * gc.exp(gc.mean(x, axis=0)).sum(), name="loss")
    values = {"x": np.random.default_rng(3).normal(size=(3, 4))}
    assert_formula_matches_generated_code(loss, [x], values)


# ---- graphs of scalars: ordinary sympy expressions, equal to sympy's own derivative --------------

x_, w_, b_ = sp.symbols("x w b")


def _scalar_cases():
    z = sp.Symbol("z")
    return [
        (lambda x, w, b: gc.tanh(w * x + b) ** 2, sp.tanh(w_ * x_ + b_) ** 2),
        (lambda x, w, b: gc.exp(w * x) / (1 + w * w) - gc.log(b * b + 1),
         sp.exp(w_ * x_) / (1 + w_**2) - sp.log(b_**2 + 1)),
        (lambda x, w, b: gc.sigmoid(w * x + b) * w, w_ / (1 + sp.exp(-(w_ * x_ + b_)))),
        (lambda x, w, b: gc.softplus(w * x) + gc.sqrt(w * w + b * b),
         sp.log(1 + sp.exp(w_ * x_)) + sp.sqrt(w_**2 + b_**2)),
        (lambda x, w, b: gc.elementwise("cubic", z**3 - 2 * z)(w - b) * x, ((w_ - b_) ** 3 - 2 * (w_ - b_)) * x_),
        (lambda x, w, b: gc.sin(w) * gc.cos(x * b), sp.sin(w_) * sp.cos(x_ * b_)),
    ]


@pytest.mark.parametrize("case", range(6))
def test_scalar_graphs_give_sympys_derivative(case):
    build_graph, f = _scalar_cases()[case]
    g = gc.Graph("scalars")
    x, w, b = g.input("x", ()), g.param("w", ()), g.param("b", ())
    y = gc.add(build_graph(x, w, b), 0.0, name="y")
    for node, symbol in ((w, w_), (b, b_)):
        d = gc.derivative(y, node)
        assert d.sympy().free_symbols <= {x_, w_, b_}
        assert sp.simplify(d.sympy() - sp.diff(f, symbol)) == 0, (d.sympy(), sp.diff(f, symbol))


# ---- folding and expanding ------------------------------------------------------------------------


def test_fold_and_expand_round_trip():
    g, loss, (W1, *_), values = founding()
    d = gc.derivative(loss, W1)
    names = {str(s) for s in d.definitions}
    assert names == {"∂loss/∂h", "∂loss/∂logits", "logits", "h"}
    one = d.expand(1)
    assert len(one.definitions) < len(d.definitions)
    full = d.expand()
    assert full.definitions == {}
    assert d.expand(0).folded == d.folded
    # every definition is used, and substituting them all gives the expanded formula
    assert full.folded == d.expand(len(d.definitions)).folded
    assert {s.name for s in full.sympy().atoms(sp.MatrixSymbol)} <= {"x", "y", "W1", "b1", "W2", "b2"}
    np.testing.assert_allclose(one.evaluate(values), d.evaluate(values), rtol=1e-12)


def test_formula_displays_in_notebooks():
    g, loss, (W1, *_), _ = founding()
    d = gc.derivative(loss, W1)
    assert d._repr_latex_().startswith("$$\\begin{aligned}")
    assert repr(d).startswith("<Formula ∂loss/∂W1 = ")


def test_chain_table_walks_from_the_loss_to_the_param():
    g, loss, (W1, *_), _ = founding()
    chain = gc.derivative(loss, W1).chain()
    assert [r.node for r in chain.rows] == ["loss", "log_softmax", "logits", "matmul_1", "h", "add", "matmul"]
    last = chain.rows[-1]
    assert (str(last.gradient), str(last.upstream)) == ("∂loss/∂W1", "∂loss/∂matmul")
    assert str(chain).splitlines()[-1].split()[-3:] == ["∂loss/∂W1", "=", "xᵀ·∂loss/∂matmul"]
    assert "h = relu(add)" in str(chain) and "□ ⊙ 𝟙[h > 0]" in str(chain)
    latex = chain.latex()
    assert latex.startswith("\\begin{align}") and latex.count("\\\\\n") == len(chain.rows) - 1
    assert set(g.nx.nodes) == set(build(N_IN, N_HIDDEN, N_OUT)[0].nx.nodes) | {
        n for n in g.nx.nodes if n.startswith(("d_", "_t", "constant", "count"))}   # the table left nothing


def test_hostile_names_are_escaped_in_latex():
    g = gc.Graph("h")
    x = g.param("a}b\\c$", (2,))
    loss = gc.sum(gc.tanh(x, name="#h^"), name="loss")
    latex = gc.derivative(loss, x).latex()
    assert r"\mathrm{a\}b\backslash c\$}" in latex
    assert r"\mathrm{\#h\^{}}" in latex


def test_derivative_of_non_tensors_is_a_graph_error():
    g, loss, params, _ = founding()
    with pytest.raises(gc.GraphError, match="must be graphcomp Tensors"):
        gc.derivative(loss, "W1")


def test_evaluate_names_a_missing_value():
    g, loss, (W1, *_), values = founding()
    del values["b2"]
    with pytest.raises(gc.FeedError, match="needs a value for 'b2'"):
        gc.derivative(loss, W1).evaluate(values)


def _small_cnn():
    g = gc.Graph("cnn")
    x, y = g.input("x", (None, 1, 6, 6)), g.input("y", (None,), dtype="int64")
    w, b, W = g.param("w", (2, 1, 3, 3)), g.param("b", (2,)), g.param("W", (8, 3))
    h = gc.relu(gc.conv2d(x, w, b, padding=1), name="h")
    s = gc.tanh(gc.flatten(gc.max_pool2d(h, 2))[:, :8] @ W, name="s")
    return gc.cross_entropy(s, y, name="loss"), w, W


def test_formulas_through_a_cnn_print_and_evaluate_what_has_a_numpy_form():
    loss, w, W = _small_cnn()
    d = gc.derivative(loss, w)
    # conv2d is im2col(x) (with a row of ones) times the kernel as a matrix (the bias its last column), one
    # matmul per image; the weight gradient sums the images' products with the columns, then drops the bias
    assert str(d).splitlines()[0] == ("∂loss/∂w = reshape(part(split_like(sum(transpose(matmul(im2col(x), "
                                      "transpose(reshape(mul(∂loss/∂h, 𝟙[h > 0])))))), reshape(w), "
                                      "reshape(b))))")
    assert "h        = relu(reshape(matmul(concatenate(reshape(w), reshape(b)), im2col(x))))" in str(d)
    rng = np.random.default_rng(5)
    values = {"x": rng.normal(size=(4, 1, 6, 6)), "y": rng.integers(0, 3, 4), "w": rng.normal(size=(2, 1, 3, 3)),
              "b": rng.normal(size=2), "W": rng.normal(size=(8, 3))}
    with pytest.raises(gc.GraphError, match=r"cannot evaluate concatenate\(\.\.\.\): the op has no NumPy form"):
        d.evaluate(values)
    assert str(gc.derivative(loss, W).chain()).splitlines()[-1].endswith("∂loss/∂W = sliceᵀ·∂loss/∂matmul_1")


def test_compiling_a_node_of_several_outputs_is_refused_clearly():
    g = gc.Graph("split")
    x = g.input("x", (4, 6))
    a, b = gc.split(x, 2, axis=1)
    with pytest.raises(gc.GraphError, match=r"\(split\) has several outputs: compile its parts"):
        gc.compile(a.args[0])


def test_hostile_names_stay_on_one_line_in_text():
    g = gc.Graph("h")
    x = g.param("a\nb\u202e", (2,))
    loss = gc.sum(gc.tanh(x, name="h\\n"), name="loss")
    text = str(gc.derivative(loss, x))
    assert "∂loss/∂a\\nb\\u202e = " in text.splitlines()[0]
    assert all("\n" not in line and "\u202e" not in line for line in text.splitlines())
