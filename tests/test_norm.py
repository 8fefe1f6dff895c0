"""batch_norm (training and inference, running statistics) and dropout (mask or key) against NumPy and,
where installed, PyTorch."""
import numpy as np
import pytest

import graphcomp as gc

RNG = np.random.default_rng(88)


def bn_graph(shape, training):
    g = gc.Graph("bn")
    x = g.param("x", (None,) + shape[1:])
    gamma, beta = g.param("gamma", (shape[1],)), g.param("beta", (shape[1],))
    mean, var = g.input("mean", (shape[1],)), g.input("var", (shape[1],))
    y, updates = gc.batch_norm(x, gamma, beta, mean, var, training=training, momentum=0.2, name="y")
    values = {"x": RNG.normal(size=shape) * 2 + 1, "gamma": RNG.normal(size=shape[1]),
              "beta": RNG.normal(size=shape[1]), "mean": RNG.normal(size=shape[1]),
              "var": RNG.uniform(0.5, 2, size=shape[1])}
    return g, y, updates, values


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)])
def test_batch_norm_training_uses_batch_statistics_and_updates_the_running_ones(shape):
    g, y, updates, v = bn_graph(shape, training=True)
    got, new_mean, new_var = gc.compile([y, updates["mean"], updates["var"]])(**v)
    axes = (0,) + tuple(range(2, len(shape)))
    column = (-1,) + (1,) * (len(shape) - 2)
    m, var = v["x"].mean(axes), v["x"].var(axes)
    want = (v["x"] - m.reshape(column)) / np.sqrt(var.reshape(column) + 1e-5) * v["gamma"].reshape(column) \
        + v["beta"].reshape(column)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_mean, 0.8 * v["mean"] + 0.2 * m, rtol=1e-12)
    np.testing.assert_allclose(new_var, 0.8 * v["var"] + 0.2 * v["x"].var(axes, ddof=1), rtol=1e-12)
    loss = gc.sum(gc.tanh(y) * g.constant(RNG.normal(size=shape[1:])))
    assert gc.check_gradients(loss, [g["x"], g["gamma"], g["beta"]], v, rtol=1e-6).ok


def test_batch_norm_inference_uses_the_running_statistics():
    g, y, updates, v = bn_graph((5, 3, 2, 2), training=False)
    assert updates == {}
    column = (-1, 1, 1)
    want = (v["x"] - v["mean"].reshape(column)) / np.sqrt(v["var"].reshape(column) + 1e-5) \
        * v["gamma"].reshape(column) + v["beta"].reshape(column)
    np.testing.assert_allclose(gc.compile(y)(**v), want, rtol=1e-12)


def test_batch_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    g, y, updates, v = bn_graph((4, 3, 5, 2), training=True)
    bn = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(v["gamma"]))
        bn.bias.copy_(torch.tensor(v["beta"]))
        bn.running_mean.copy_(torch.tensor(v["mean"]))
        bn.running_var.copy_(torch.tensor(v["var"]))
    want = bn.train()(torch.tensor(v["x"])).detach().numpy()
    got, new_mean, new_var = gc.compile([y, updates["mean"], updates["var"]])(**v)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new_mean, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(new_var, bn.running_var.numpy(), rtol=1e-12)


def test_dropout_with_a_key_repeats_and_scales_the_kept_values():
    g = gc.Graph("drop")
    x = g.param("x", (None, 50))
    key = g.input("step", (), "int64")
    y = gc.dropout(x, 0.3, key=key)
    f = gc.compile([y, gc.grad(gc.sum(y), x)])
    value = RNG.normal(size=(40, 50))
    first, d1 = f(x=value, step=np.int64(7))
    again, _ = f(x=value, step=np.int64(7))
    other, _ = f(x=value, step=np.int64(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    kept = first != 0
    np.testing.assert_allclose(first[kept], value[kept] / 0.7)
    np.testing.assert_allclose(d1, kept / 0.7)
    assert 0.6 < kept.mean() < 0.8
    with pytest.raises(gc.FeedError, match="dropout key"):
        f(x=value, step=np.int64(-1))


def test_dropout_with_a_mask_input():
    g = gc.Graph("drop")
    x = g.param("x", (3, 4))
    mask = g.input("mask", (3, 4), "bool")
    y = gc.dropout(x, 0.5, mask=mask)
    m = RNG.random((3, 4)) < 0.5
    value = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(gc.compile(y)(x=value, mask=m), np.where(m, value * 2, 0.0))
    assert gc.check_gradients(gc.sum(y ** 2), [x], {"x": value, "mask": m}).ok


@pytest.mark.parametrize("build, message", [
    (lambda g, x: gc.dropout(x, 0.5), "dropout needs a mask or a key"),
    (lambda g, x: gc.dropout(x, 1.0, key=g.input("k", (), "int64")), "dropout rate must be in [0, 1), got 1.0"),
    (lambda g, x: gc.dropout(x, 0.5, key=g.input("k", (2,), "int64")), "must be an integer scalar"),
    (lambda g, x: gc.batch_norm(x, *(g.param(n, (3,)) for n in "abcd"), training=True),
     "'a' must be shaped (4,) like the channel axis of 'x', got (3,)"),
])
def test_bad_norm_and_dropout_arguments_are_refused(build, message):
    g = gc.Graph("bad")
    with pytest.raises(gc.GraphError) as e:
        build(g, g.param("x", (2, 4)))
    assert message in str(e.value)
