"""conv2d, conv1d and pooling against naive loops over many stride/padding/dilation/groups combinations,
their shapes with a free batch dim, the ShapeErrors for combinations that do not fit, and
hypothesis-drawn slices and conv parameters."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphcomp as gc
import naive

RNG = np.random.default_rng(8)

COMBOS = [  # (in channels, out channels, kernel, stride, padding, dilation, groups)
    (c, o, k, s, p, d, g)
    for (c, o, g), k, s, p, d in itertools.product(
        [(2, 3, 1), (4, 6, 2), (3, 3, 3)], [(3, 3), (2, 3)], [1, (2, 1)], [0, 1, (2, 0)], [1, (1, 2)])
]


def im2col_of(y):
    """The im2col node conv2d built for output ``y``: its params are the conv's, normalized."""
    found = [n for n in y.graph.upstream([y.name]) if y.graph.nx.nodes[n]["op"] == "im2col"]
    assert len(found) == 1
    return y.graph[found[0]]


def canonical(padding):
    pair = (padding, padding) if isinstance(padding, int) else padding
    return tuple((p, p) for p in pair)


def conv_case(c, o, k, s, p, d, g):
    """A conv2d with bias of a free batch, values for a batch of 2, and the params as naive's loops take them."""
    graph = gc.Graph("conv")
    x = graph.input("x", (None, c, 6, 7))
    w = graph.param("w", (o, c // g) + k)
    b = graph.param("b", (o,))
    y = gc.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    values = dict(x=RNG.normal(size=(2, c, 6, 7)), w=RNG.normal(size=w.shape), b=RNG.normal(size=(o,)))
    params = ((s, s) if isinstance(s, int) else s, canonical(p), (d, d) if isinstance(d, int) else d, g)
    return (x, w, b, y), values, params


@pytest.mark.parametrize("c, o, k, s, p, d, g", COMBOS)
def test_conv2d_matches_naive_loops(c, o, k, s, p, d, g):
    (x, w, b, y), values, params = conv_case(c, o, k, s, p, d, g)
    want = naive.conv2d(values["x"], values["w"], *params) + values["b"][:, None, None]
    assert y.shape[1:] == want.shape[1:] and y.shape[0] == x.shape[0]
    np.testing.assert_allclose(gc.compile(y)(**values), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c, o, k, s, p, d, g", COMBOS[::3])
def test_conv2d_gradients_match_naive_loops(c, o, k, s, p, d, g):
    (x, w, b, y), values, params = conv_case(c, o, k, s, p, d, g)
    ct = y.graph.input("ct", (None,) + y.shape[1:])
    dx, dw, db = gc.grad(gc.sum(y * ct), [x, w, b])
    values["ct"] = RNG.normal(size=(2,) + y.shape[1:])
    f = gc.compile([dx, dw, db])
    assert "= _conv2d_transpose(" in f.source and "= _col2im(" not in f.source      # no columns for the input gradient
    got = f(**values)
    np.testing.assert_allclose(got[0], naive.conv2d_grad_input(values["ct"], values["w"], (6, 7), *params),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], naive.conv2d_grad_weight(values["x"], values["ct"], k, *params),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], values["ct"].sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), (3, 2), (2, 3)])
def test_same_padding_keeps_the_size_and_valid_pads_nothing(kernel, dilation):
    graph = gc.Graph("same")
    x = graph.input("x", (None, 2, 7, 6))
    w = graph.param("w", (3, 2, kernel, kernel))
    same = gc.conv2d(x, w, padding="same", dilation=dilation)
    valid = gc.conv2d(x, w, padding="valid", dilation=dilation)
    total = dilation * (kernel - 1)
    assert same.shape[2:] == (7, 6)
    assert im2col_of(same).params["padding"] == ((total // 2, total - total // 2),) * 2  # the extra row after
    assert im2col_of(valid).params["padding"] == ((0, 0), (0, 0))


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1),
                                                               (3, (2, 0), 1, 2)])
def test_conv1d_is_conv2d_on_one_row(stride, padding, dilation, groups):
    graph = gc.Graph("c1")
    x = graph.input("x", ("n", 4, 9))
    w = graph.param("w", (6, 4 // groups, 3))
    b = graph.param("b", (6,))
    y = gc.conv1d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, name="y")
    values = dict(x=RNG.normal(size=(2, 4, 9)), w=RNG.normal(size=(6, 4 // groups, 3)), b=RNG.normal(size=6))
    pad = ((0, 0), im2col_of(y).params["padding"][1])
    want = naive.conv2d(values["x"][:, :, None], values["w"][:, :, None], (1, stride), pad, (1, dilation), groups)
    got = gc.compile(y)(**values)
    assert y.name == "y" and got.shape == want[:, :, 0].shape
    np.testing.assert_allclose(got, want[:, :, 0] + values["b"][:, None], rtol=1e-12, atol=1e-12)
    assert gc.check_gradients(gc.sum(gc.tanh(y)), [w, b], values).ok


@pytest.mark.parametrize("op, kernel, stride, padding", [
    (op, k, s, p) for op in ("max_pool2d", "avg_pool2d")
    for k, s, p in [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1)), (3, 1, 0)]])
def test_pooling_matches_naive_loops(op, kernel, stride, padding):
    graph = gc.Graph("pool")
    x = graph.param("x", (None, 2, 6, 7))
    y = getattr(gc, op)(x, kernel, stride, padding)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = k if stride is None else (stride, stride) if isinstance(stride, int) else stride
    value = RNG.normal(size=(3, 2, 6, 7))
    want = getattr(naive, op)(value, k, s, canonical(padding))
    np.testing.assert_allclose(gc.compile(y)(x=value), want, rtol=1e-12)
    assert gc.check_gradients(gc.sum(y * y), [x], {"x": value}).ok


def test_max_pool_gradient_goes_to_the_first_max_on_ties():
    graph = gc.Graph("ties")
    x = graph.param("x", (1, 1, 2, 2))
    dx = gc.grad(gc.sum(gc.max_pool2d(x, 2)), x)
    np.testing.assert_array_equal(gc.compile(dx)(x=np.ones((1, 1, 2, 2))), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_flatten_keeps_a_free_batch_dim():
    graph = gc.Graph("flat")
    x = graph.input("x", (None, 16, 4, 4))
    y = gc.flatten(x)
    assert y.shape == (x.shape[0], 256)
    assert gc.flatten(x, 2).shape == (x.shape[0], 16, 16)
    np.testing.assert_array_equal(gc.compile(y)(x=np.arange(512.0).reshape(2, 16, 4, 4)),
                                  np.arange(512.0).reshape(2, 256))


def test_hessian_vector_product_through_conv_and_pools():
    graph = gc.Graph("hvp")
    x = graph.input("x", (2, 2, 6, 6))
    w = graph.param("w", (3, 2, 3, 3))
    h = gc.max_pool2d(gc.tanh(gc.conv2d(x, w, padding=1)), 2)
    loss = gc.sum(gc.avg_pool2d(h, 3, 1, 1) ** 2)
    v = RNG.normal(size=w.shape)
    values = {"x": RNG.normal(size=x.shape), "w": RNG.normal(size=w.shape)}
    hv = gc.compile(gc.hvp(loss, w, v))(**values)
    grad = gc.compile(gc.grad(loss, w))
    eps = 1e-6
    numeric = (grad(x=values["x"], w=values["w"] + eps * v) - grad(x=values["x"], w=values["w"] - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("build, message", [
    (lambda g: gc.conv2d(g.input("x", (None, 3, 5, 5)), g.param("w", (4, 2, 3, 3)), name="c"),
     "conv2d 'c': weight (4, 2, 3, 3) takes 2 channels per group, but the input (None, 3, 5, 5) has 3"),
    (lambda g: gc.conv2d(g.input("x", (None, 4, 5, 5)), g.param("w", (3, 2, 3, 3)), groups=2, name="c"),
     "conv2d 'c': groups=2 must divide the 4 input channels and the 3 output channels"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 7, 3)), padding=0, name="c"),
     "conv2d 'c': conv2d height: kernel 7 (dilation 1, spanning 7) is larger than the input 5 padded "
     "by (0, 0) to 5"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 3, 3)), dilation=3, name="c"),
     "kernel 3 (dilation 3, spanning 7) is larger than the input 5"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 3, 3)), stride=0, name="c"),
     "conv2d 'c': stride must be an int or a pair of ints >= 1, got 0"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 3, 3)), padding=-1, name="c"),
     "padding (an int, a pair, pairs, \"same\" or \"valid\") must be an int or a pair of ints >= 0, got -1"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 3, 3)), stride=2, padding="same"),
     'padding "same" needs stride 1, got stride (2, 2)'),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5)), g.param("w", (4, 2, 3, 3)), name="c"),
     "needs an (n, channels, height, width) input with static channels, height and width, got (None, 2, 5)"),
    (lambda g: gc.conv2d(g.input("x", (None, 2, 5, 5)), g.param("w", (4, 2, 3, 3)), groups=0, name="c"),
     "groups must be an int >= 1, got 0"),
    (lambda g: gc.max_pool2d(g.input("x", (None, 2, 5, 5)), 2, padding=2, name="p"),
     "node 'p' (max_pool2d): padding ((2, 2), (2, 2)) must be at most half the kernel (2, 2)"),
    (lambda g: gc.avg_pool2d(g.input("x", (None, 2, 3, 3)), 4, name="p"),
     "node 'p' (avg_pool2d): avg_pool2d height: kernel 4 (dilation 1, spanning 4) is larger than the input 3"),
    (lambda g: gc.conv1d(g.input("x", (None, 2, 5)), g.param("w", (4, 2, 3)), stride=(1, 2)),
     "conv1d stride must be an int, got (1, 2)"),
    (lambda g: gc.split(g.input("x", (None, 6)), 4, axis=1),
     "cannot split axis 1 of size 6 into 4 equal pieces"),
    (lambda g: gc.split(g.input("x", (None, 6)), 2, axis=0), "cannot split free dim"),
    (lambda g: gc.concatenate([g.input("x", (2, 3)), g.input("y", (3, 4))], axis=0, name="c"),
     "node 'c' (concatenate): (2, 3) and (3, 4) differ in dim 1 (3 != 4); only axis 0 may differ"),
    (lambda g: g.input("x", (2, 3))[0, 5], "index 5 is out of range for axis 1 of size 3"),
    (lambda g: g.input("x", (2, 3))[0, 1, 2], "index (0, 1, 2) has 3 entries for 2-d (2, 3)"),
    (lambda g: g.input("x", (2, 3))[None], "index None is not static"),
    (lambda g: gc.pad(g.input("x", (2, 3)), ((1, 1),), name="p"),
     "node 'p' (pad): pad_width ((1, 1),) must give (before, after) >= 0 for each of the 2 axes of (2, 3)"),
    (lambda g: gc.clip(g.input("x", (2, 3)), 1.0, -1.0), "clip bounds 1.0 > -1.0"),
    (lambda g: gc.take(g.input("t", (5, 3)), g.input("i", (4,))), "indices 'i' must be integers, got float64"),
])
def test_bad_combinations_are_shape_errors_naming_node_and_numbers(build, message):
    with pytest.raises(gc.ShapeError) as e:
        build(gc.Graph("bad"))
    assert message in str(e.value)


def test_take_refuses_an_index_out_of_range_when_fed():
    g = gc.Graph("emb")
    table = g.param("table", (5, 3))
    y = gc.take(table, g.input("i", (None,), "int64"))
    f = gc.compile(y)
    with pytest.raises(gc.FeedError, match=r"feed 'i': 5 at flat index 1 is not an index into axis 0 of 'table'"):
        f(table=np.zeros((5, 3)), i=np.array([0, 5]))
    with pytest.raises(gc.FeedError):
        f(table=np.zeros((5, 3)), i=np.array([-1]))


# ---- hypothesis: random slices and conv parameters ------------------------------------------------

SHAPE = (4, 5, 3)
bounds = st.one_of(st.none(), st.integers(-6, 6))
index_item = st.one_of(st.integers(-3, 2), st.builds(slice, bounds, bounds, st.sampled_from([None, 1, 2, -1, -2, 3])))


@given(st.lists(index_item, min_size=1, max_size=3), st.booleans())
def test_random_static_slices_match_numpy_in_value_and_gradient(items, ellipsis):
    index = tuple(items) + ((Ellipsis,) if ellipsis else ())
    value = np.arange(60.0).reshape(SHAPE) / 7 - 3
    want = value[index]
    g = gc.Graph("slices")
    x = g.param("x", SHAPE)
    y = x[index]
    assert y.shape == want.shape
    np.testing.assert_array_equal(gc.compile(y)(x=value), want)
    weights = RNG.normal(size=want.shape)
    dx = gc.compile(gc.grad(gc.sum(y * g.constant(weights)), x))(x=value)
    expected = np.zeros(SHAPE)
    expected[index] += weights       # a basic index selects each element at most once
    np.testing.assert_allclose(dx, expected)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.sampled_from([1, 2]),
       st.integers(4, 7))
def test_random_conv_parameters_infer_the_shape_numpy_computes_or_refuse(k, s, p, d, groups, size):
    g = gc.Graph("shapes")
    x = g.input("x", (None, 2, size, size))
    w = g.param("w", (2, 2 // groups, k, k))
    span = d * (k - 1) + 1
    if span > size + 2 * p:
        with pytest.raises(gc.ShapeError, match="is larger than the input"):
            gc.conv2d(x, w, stride=s, padding=p, dilation=d, groups=groups)
        return
    y = gc.conv2d(x, w, stride=s, padding=p, dilation=d, groups=groups)
    values = {"x": RNG.normal(size=(1, 2, size, size)), "w": RNG.normal(size=w.shape)}
    want = naive.conv2d(values["x"], values["w"], (s, s), ((p, p), (p, p)), (d, d), groups)
    assert y.shape[1:] == want.shape[1:]
    np.testing.assert_allclose(gc.compile(y)(**values), want, rtol=1e-12, atol=1e-12)


def test_joining_floats_with_integers_sends_gradient_to_the_floats_only():
    g = gc.Graph("mixed")
    x = g.param("x", (2, 3), "float32")
    k = g.input("k", (2, 3), "int64")
    for joined in (gc.concatenate([x, k], axis=0), gc.stack([k, x])):
        dx = gc.grad(gc.sum(joined * joined), x)
        assert (joined.dtype, dx.dtype) == ("float64", "float32")
        value = np.arange(6, dtype="float32").reshape(2, 3)
        np.testing.assert_allclose(gc.compile(dx)(x=value, k=np.ones((2, 3), "int64")), 2 * value)
