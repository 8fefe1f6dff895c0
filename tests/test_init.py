"""gc.init.initialize: the statistics of each scheme, fans, roles, overrides and determinism."""
import math

import numpy as np
import pytest

import graphcomp as gc


def big_step(dtype="float64"):
    """A step with a (400, 300) weight, a (16, 8, 3, 3) kernel-shaped weight and a (300,) bias."""
    g = gc.Graph("init", dtype=dtype)
    x = g.input("x", (None, 400))
    W, K, b = g.param("W", (400, 300)), g.param("K", (16, 8, 3, 3)), g.param("b", (300,))
    loss = gc.sum(x @ W + b) + gc.sum(K * K)
    return gc.compile_training(loss, [W, K, b], optimizer=gc.optim.SGD(0.1))


# scheme, W's expected std (fan_in 400, fan_out 300), K's (fan_in 8*9, fan_out 16*9)
STATS = [
    ("glorot_uniform", math.sqrt(2 / 700), math.sqrt(2 / (72 + 144))),
    ("xavier_uniform", math.sqrt(2 / 700), math.sqrt(2 / (72 + 144))),
    ("glorot_normal", math.sqrt(2 / 700), math.sqrt(2 / (72 + 144))),
    ("he_uniform", math.sqrt(2 / 400), math.sqrt(2 / 72)),
    ("kaiming_normal", math.sqrt(2 / 400), math.sqrt(2 / 72)),
    ("he_normal", math.sqrt(2 / 400), math.sqrt(2 / 72)),
]


@pytest.mark.parametrize("scheme, std_W, std_K", STATS, ids=[s[0] for s in STATS])
def test_scheme_statistics(scheme, std_W, std_K):
    p = gc.init.initialize(big_step(), seed=1, weights=scheme)
    assert abs(p["W"].mean()) < 0.1 * std_W
    assert p["W"].std() == pytest.approx(std_W, rel=0.02)
    assert p["K"].std() == pytest.approx(std_K, rel=0.05)
    if "uniform" in scheme:
        assert np.abs(p["W"]).max() <= math.sqrt(3) * std_W
    np.testing.assert_array_equal(p["b"], 0.0)


def test_same_seed_same_bits_and_overrides_leave_the_others_alone():
    step = big_step()
    a, b = gc.init.initialize(step, seed=7), gc.init.initialize(step, seed=7)
    c = gc.init.initialize(step, seed=8)
    d = gc.init.initialize(step, seed=7, overrides={"K": "he_normal", "b": 0.5})
    for n in a:
        assert a[n].tobytes() == b[n].tobytes()
    assert not np.array_equal(a["W"], c["W"])
    assert a["W"].tobytes() == d["W"].tobytes()
    assert not np.array_equal(a["K"], d["K"])
    np.testing.assert_array_equal(d["b"], 0.5)


def test_arrays_fit_train_step():
    step = big_step("float32")
    p = gc.init.initialize(step, seed=0, weights=0.01, biases="zeros")
    assert list(p) == ["W", "K", "b"]
    for n, v in p.items():
        assert v.dtype == np.float32 and v.flags.c_contiguous and v.flags.writeable
    np.testing.assert_array_equal(p["W"], np.float32(0.01))
    state = step.init_state(p)
    step.train_step(p, state, x=np.ones((2, 400), np.float32))


BAD = [
    (dict(weights="lecun"), r"param 'W': unknown scheme 'lecun'; expected a number, 'zeros' or one of"),
    (dict(biases="he_normal"), r"param 'b' of shape \(300,\) has no fan-in and fan-out for 'he_normal'"),
    (dict(overrides={"W3": "zeros"}), r"overrides name 'W3', which is no param of the step"),
    (dict(seed=-1), r"seed must be a non-negative int, got -1"),
    (dict(seed=1.5), r"seed must be a non-negative int, got 1.5"),
]


@pytest.mark.parametrize("kwargs, message", BAD, ids=[m for _, m in BAD])
def test_bad_initialize_calls(kwargs, message):
    with pytest.raises(gc.TrainingError, match=message):
        gc.init.initialize(big_step(), **kwargs)
