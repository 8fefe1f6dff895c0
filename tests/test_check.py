"""check_gradients: passes right gradients, catches wrong ones, reports per node."""
import numpy as np
import pytest

import graphcomp as gc
from founding import build, feed
from graphcomp.op import OPS

SMALL = dict(n_in=5, n_hidden=4, n_out=3)


def small_feed():
    return feed(batch=6, **SMALL)


def test_report_has_a_row_per_param():
    g, loss, params = build(**SMALL)
    report = gc.check_gradients(loss, params, small_feed())
    assert report.ok
    assert [r.name for r in report.rows] == ["W1", "b1", "W2", "b2"]
    assert report["W1"].checked == 20
    text = str(report)
    assert "max abs err" in text and "max rel err" in text
    assert sum(line.endswith("pass") for line in text.splitlines()) == 4


def test_catches_a_wrong_hand_given_gradient():
    g, loss, params = build(**SMALL)
    grads = gc.grad(loss, params)
    wrong = list(grads)
    wrong[2] = grads[2] * 1.001
    report = gc.check_gradients(loss, params, small_feed(), gradients=wrong)
    assert not report.ok
    assert [r.ok for r in report.rows] == [True, True, False, True]
    assert "FAIL" in str(report) and "GRADIENT MISMATCH" in str(report)


def test_catches_a_wrong_vjp_rule(monkeypatch):
    tanh = OPS["tanh"]
    monkeypatch.setattr(type(tanh), "vjp", lambda self, ct, y, x: (ct * (1 - y),))   # forgot the square
    g = gc.Graph()
    x = g.param("x", (3,))
    report = gc.check_gradients(gc.sum(gc.tanh(x)), [x], {"x": np.array([0.3, -0.8, 1.5])})
    assert not report.ok


def test_max_checks_samples_elements():
    g, loss, params = build(**SMALL)
    report = gc.check_gradients(loss, params[:1], small_feed(), max_checks=7)
    assert report.rows[0].checked == 7 and report.ok


def test_missing_value_in_feed():
    g, loss, params = build(**SMALL)
    values = small_feed()
    del values["b2"]
    with pytest.raises(gc.FeedError, match="'b2'"):
        gc.check_gradients(loss, params, values)


def test_feed_is_not_modified():
    g, loss, params = build(**SMALL)
    values = small_feed()
    saved = {k: v.copy() for k, v in values.items()}
    gc.check_gradients(loss, params, values)
    for k in values:
        np.testing.assert_array_equal(values[k], saved[k])


def test_float32_graph_is_checked_in_float64():
    g, loss, params = build(dtype="float32", **SMALL)
    values = feed(batch=6, dtype="float32", **SMALL)
    report = gc.check_gradients(loss, params, values)
    assert report.ok, report
    assert max(r.max_rel_error for r in report.rows) < 1e-6      # float32 arithmetic could not get here
    assert values["W1"].dtype == np.float32


def test_unused_node_of_a_float32_graph_gets_a_zero_row():
    g = gc.Graph(dtype="float32")
    x = g.param("x", (2,))
    unused = g.param("unused", (3,))
    report = gc.check_gradients(gc.sum(x * x), [x, unused],
                                {"x": np.ones(2, np.float32), "unused": np.ones(3, np.float32)})
    assert report.ok and report["unused"].max_abs_error == 0
    with pytest.raises(KeyError):
        report["nope"]
    with pytest.raises(gc.FeedError, match="'unused'"):
        gc.check_gradients(gc.sum(x * x), [x, unused], {"x": np.ones(2, np.float32)})
