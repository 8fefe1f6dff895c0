"""check_gradients names the node whose VJP rule is wrong; float32 mode, random directions, report views."""
import contextlib
import io
import pathlib
import re
import textwrap

import numpy as np
import pytest

import graphcomp as gc
from founding import build, feed
from graphcomp.codegen.ir import Call, Const, Name, np_call
from graphcomp.graph import F
from graphcomp.op import OPS, Op, register

SMALL = dict(n_in=5, n_hidden=4, n_out=3)

SOFTSIGN = '''
@register
class Softsign(Op):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)**2."""
    name = "faults_softsign"

    def infer(self, x):
        return x.shape, x.dtype

    def emit(self, x):
        return np_call("divide", x, np_call("add", Const(1.0), np_call("abs", x)))

    def vjp(self, ct, y, x):
        return (ct / (1 + abs(x)) ** POWER,)
'''


@pytest.fixture
def clean_ops():
    """Remove the ops a test registers (tests/test_ops.py wants a row for every registered op)."""
    before = set(OPS)
    yield
    for name in set(OPS) - before:
        del OPS[name]


@pytest.fixture
def softsign(clean_ops):
    """Register the test op with a right (power 2) or wrong rule."""
    def define(power):
        namespace = {"__name__": "fault_ops", "Op": Op, "register": register, "np_call": np_call,
                     "Const": Const, "Call": Call, "Name": Name, "POWER": power}
        exec(textwrap.dedent(SOFTSIGN), namespace)   # noqa: S102 - the test's own source
        return F.faults_softsign

    return define


def deep(softsign):
    """x -> tanh(x W1 + b1) -> softsign -> (.) W2 -> tanh -> mean square: the softsign node 's' deep inside."""
    g = gc.Graph("deep")
    x = g.input("x", (None, 5))
    t = g.input("t", (None, 3))
    W1, b1, W2 = g.param("W1", (5, 4)), g.param("b1", (4,)), g.param("W2", (4, 3))
    h = gc.tanh(x @ W1 + b1, name="h")
    s = softsign(h, name="s")
    out = gc.tanh(gc.matmul(s, W2, name="z"), name="out")
    loss = gc.mse_loss(out, t, name="loss")
    rng = np.random.default_rng(3)
    values = {"x": rng.normal(size=(6, 5)), "t": rng.normal(size=(6, 3)), "W1": rng.normal(size=(5, 4)),
              "b1": rng.normal(size=4), "W2": rng.normal(size=(4, 3))}
    return loss, [W1, b1, W2], values


def test_a_wrong_rule_deep_inside_is_named(softsign):
    loss, params, values = deep(softsign(power=1))       # forgot the square
    report = gc.check_gradients(loss, params, values)
    assert not report.ok
    assert [r.ok for r in report.rows] == [False, False, True]    # W2 is above the fault
    assert report.faulty == ["s"]
    node = next(n for n in report.nodes if n.name == "s")
    assert node.op == "faults_softsign" and node.max_rel_error > 1e-2
    assert "its VJP for h disagrees" in node.reason
    assert all(n.ok for n in report.nodes if n.name != "s")
    text = str(report)
    assert "each node's VJP rule alone" in text
    assert "faulty: s (faults_softsign): its VJP for h disagrees with central differences" in text


def test_the_right_rule_passes_and_localization_finds_nothing(softsign):
    loss, params, values = deep(softsign(power=2))
    report = gc.check_gradients(loss, params, values, localize=True)
    assert report.ok and report.localized and report.faulty == []
    assert [n.name for n in report.nodes] == ["matmul", "add", "h", "s", "z", "out", "loss"]
    assert all(n.ok for n in report.nodes)
    assert "no faulty node" in str(report)


def test_faulty_exists_when_everything_passes():
    g, loss, params = build(**SMALL)
    report = gc.check_gradients(loss, params, feed(batch=6, **SMALL))
    assert report.ok and report.faulty == [] and report.nodes == () and not report.localized
    assert "VJP rule alone" not in str(report)


def test_founding_network_localizes_clean_with_labels_skipped_and_kinks_counted():
    g, loss, params = build(**SMALL)
    report = gc.check_gradients(loss, params, feed(batch=6, **SMALL), localize=True)
    assert report.faulty == []
    by_name = {n.name: n for n in report.nodes}
    assert set(by_name) == {"matmul", "add", "h", "matmul_1", "logits", "log_softmax", "loss"}
    assert by_name["loss"].ok          # its labels arg is an int input, fed as is, not differentiated
    assert by_name["matmul"].checked == 4    # x is off the path: only W1 (20 elements) along 4 directions


def test_non_float_and_no_gradient_nodes_are_skipped_with_a_reason():
    g = gc.Graph("mixed")
    w = g.param("w", (4,))
    mask = gc.greater(w, 0.0, name="mask")
    signs = gc.sign(w, name="signs")
    loss = gc.sum(gc.where(mask, w * w, -w) + signs, name="loss")
    report = gc.check_gradients(loss, [w], {"w": np.array([0.5, -1.0, 2.0, -0.3])}, localize=True)
    by_name = {n.name: n for n in report.nodes}
    assert by_name["mask"].ok is None and by_name["mask"].reason == "output is bool: no derivative"
    assert by_name["signs"].ok is None and by_name["signs"].reason == "the op declares no gradient"
    assert by_name["where"].ok and report.faulty == []
    assert "skipped: output is bool: no derivative" in str(report)


def test_an_integer_argument_on_the_path_is_skipped():
    g = gc.Graph("ints")
    w = g.param("w", (3,))
    k = gc.cast(w * 10.0, "int64", name="k")
    loss = gc.sum(w * gc.cast(k, "float64", name="back"), name="loss")
    report = gc.check_gradients(loss, [w], {"w": np.array([0.21, -0.47, 0.93])}, localize=True)
    by_name = {n.name: n for n in report.nodes}
    assert by_name["k"].ok is None and "output is int64" in by_name["k"].reason
    assert by_name["back"].ok is None and by_name["back"].reason == "no float argument on the path"


def test_hand_given_wrong_gradients_blame_no_rule():
    g, loss, params = build(**SMALL)
    grads = gc.grad(loss, params)
    report = gc.check_gradients(loss, params, feed(batch=6, **SMALL), gradients=[grads[0] * 1.01, *grads[1:]])
    assert not report.ok and report.localized and report.faulty == []
    assert "suspect the gradients given" in report.diagnosis


def test_float32_mode_checks_float32_arithmetic_with_its_tolerances():
    g = gc.Graph("smooth", dtype="float32")
    x, t = g.input("x", (None, 8)), g.input("t", (None, 3))
    W1, W2 = g.param("W1", (8, 16)), g.param("W2", (16, 3))
    loss = gc.mse_loss(gc.tanh(x @ W1) @ W2, t, name="loss")
    rng = np.random.default_rng(1)
    values = {"x": rng.normal(size=(10, 8)), "t": rng.normal(size=(10, 3)),
              "W1": rng.normal(size=(8, 16)) / 3, "W2": rng.normal(size=(16, 3)) / 4}
    values = {k: v.astype(np.float32) for k, v in values.items()}
    report = gc.check_gradients(loss, [W1, W2], values, dtype="float32", localize=True)
    assert report.ok and report.faulty == [], report
    assert (report.dtype, report.rtol, report.atol, report.scaled) == ("float32", 2e-3, 1e-4, True)
    assert report.eps == pytest.approx(np.cbrt(np.finfo(np.float32).eps))
    assert "'loss': central differences in float32, eps=0.00492157 * max(1, |x|)" in str(report)
    assert 1e-6 < max(r.max_rel_error for r in report.rows) < 2e-3     # float32's own rounding shows
    dW1, dW2 = gc.grad(loss, [W1, W2])
    wrong = gc.check_gradients(loss, [W1, W2], values, dtype="float32", gradients=[dW1 * 1.01, dW2])
    assert [r.ok for r in wrong.rows] == [False, True]


def test_float32_mode_of_a_float64_graph_and_a_step_too_small():
    g, loss, params = build(**SMALL)
    values = feed(batch=6, **SMALL)
    assert gc.check_gradients(loss, params[2:], values, dtype="float32").ok
    with pytest.raises(gc.GradientError, match=r"step 1e-09 is below the resolution of float32 at 'W2'\[0\]"):
        gc.check_gradients(loss, params[2:], values, dtype="float32", eps=1e-9)
    with pytest.raises(gc.GradientError, match="dtype must be 'float64' or 'float32', got 'float16'"):
        gc.check_gradients(loss, params, values, dtype="float16")


def test_random_directions_check_is_cheap_and_catches_a_wrong_rule(softsign):
    loss, params, values = deep(softsign(power=2))
    report = gc.check_gradients(loss, params, values, directions=1)
    assert report.ok and [(r.kind, r.checked) for r in report.rows] == [("directions", 1)] * 3
    assert "1 dir" in str(report)
    loss, params, values = deep(softsign(power=1))      # the same definition again replaces the op
    report = gc.check_gradients(loss, params, values, directions=2)
    assert [r.ok for r in report.rows] == [False, False, True] and report.faulty == ["s"]
    with pytest.raises(gc.GradientError, match="directions must be a positive int or None, got 0"):
        gc.check_gradients(loss, params, values, directions=0)


def test_random_directions_of_a_node_the_loss_does_not_read():
    g = gc.Graph()
    x, unused = g.param("x", (2,)), g.param("unused", (3,))
    report = gc.check_gradients(gc.sum(x * x), [x, unused], {"x": np.ones(2), "unused": np.ones(3)}, directions=1)
    assert report.ok and report["unused"].max_abs_error == 0


def test_report_shows_as_html_and_latex_with_hostile_names_escaped(softsign):
    loss, params, values = deep(softsign(power=1))
    g = loss.graph
    hostile = g.param("<b>\u202e&{x}_$\n", (3,))
    loss2 = gc.add(loss, gc.sum(hostile * hostile), name="loss2")
    report = gc.check_gradients(loss2, [*params, hostile], {**values, "<b>\u202e&{x}_$\n": np.ones(3)})
    page = report._repr_html_()
    assert page.count("<table>") == 2 and "<th>max rel err</th>" in page
    assert "&lt;b&gt;\\u202e&amp;{x}_$\\n" in page and "\u202e" not in page and "<b>\u202e" not in page
    assert "<td>FAIL</td>" in page and "faulty: s (faults_softsign)" in page
    latex = report._repr_latex_()
    assert latex.startswith("$$\n\\begin{array}{lrrrrl}") and latex.endswith("\\end{array}\n$$")
    assert r"\text{<b>}\backslash \text{u202e}\&\{\text{x}\}\_\$\backslash \text{n}" in latex
    assert r"\text{faults}\_\text{softsign}" in latex and r"10^{-1}" in latex


def test_the_docs_example_prints_what_docs_show(clean_ops):
    """docs/gradients.md "When a gradient check fails": its code prints the report shown under it."""
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "gradients.md").read_text()
    section = doc[doc.index("## When a gradient check fails"):]
    code, shown = re.search(r"```python\n(.*?)```\n\n```\n(.*?)```", section, re.S).groups()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {"__name__": "docs_example"})   # noqa: S102 - the docs' own example
    assert printed.getvalue() == shown
    api = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    assert "\n".join("    " + line if line else "" for line in shown.splitlines()[:-1]) in api


def test_localization_steps_over_nodes_of_several_outputs():
    """A scan's parts read a node of several outputs: they are skipped with a reason, nothing crashes."""
    g = gc.Graph("rnn")
    xs, h0 = g.input("xs", (5, None, 3)), g.input("h0", (None, 4))
    Wx, Wh = g.param("Wx", (3, 4)), g.param("Wh", (4, 4))

    def body(h, x_t):
        h = gc.tanh(x_t @ Wx + h @ Wh)
        return h, h

    _, hs = gc.scan(body, h0, xs)
    loss = gc.sum(hs * hs, name="loss")
    rng = np.random.default_rng(0)
    feed = {"xs": rng.normal(size=(5, 2, 3)), "h0": rng.normal(size=(2, 4)), "Wx": rng.normal(size=(3, 4)) * 0.3,
            "Wh": rng.normal(size=(4, 4)) * 0.3}
    report = gc.check_gradients(loss, [Wx, Wh], feed, localize=True)
    assert report.ok and report.faulty == []
    assert any("several outputs" in (n.reason or "") for n in report.nodes)
