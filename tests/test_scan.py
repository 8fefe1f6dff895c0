"""scan: values against naive loops, gradients against the unrolled graph and finite differences, HVP
through a scan, nested scans, the cells against hand-written references, and the errors."""
import numpy as np
import pytest

import graphcomp as gc
import naive

RNG = np.random.default_rng(80)
T, B, I, H = 4, 3, 2, 5


def rnn_graph(cell, gates, batch=None, steps=T):
    g = gc.Graph(cell)
    xs = g.input("xs", (steps, batch, I))
    h0 = g.input("h0", (batch, H))
    W_ih, W_hh = g.param("W_ih", (gates * H, I)), g.param("W_hh", (gates * H, H))
    b_ih, b_hh = g.param("b_ih", (gates * H,)), g.param("b_hh", (gates * H,))
    return g, xs, h0, (W_ih, W_hh, b_ih, b_hh)


def values(gates, batch=B, steps=T):
    return {"xs": RNG.normal(size=(steps, batch, I)), "h0": RNG.normal(size=(batch, H)),
            "W_ih": RNG.normal(size=(gates * H, I)) * 0.7, "W_hh": RNG.normal(size=(gates * H, H)) * 0.5,
            "b_ih": RNG.normal(size=gates * H) * 0.3, "b_hh": RNG.normal(size=gates * H) * 0.3}


def weights(v):
    return v["W_ih"], v["W_hh"], v["b_ih"], v["b_hh"]


def test_elman_scan_matches_naive_loop_and_unrolled_graph_in_values_and_gradients():
    g, xs, h0, w = rnn_graph("elman", 1)
    h_last, hs = gc.scan(lambda h, x: (gc.elman_cell(h, x, *w),) * 2, h0, xs)
    # the unrolled alternative: one cell per step, built into the graph
    h, unrolled = h0, []
    for t in range(T):
        h = gc.elman_cell(h, xs[t], *w)
        unrolled.append(h)
    weights_out = g.constant(RNG.normal(size=(T, B, H)))
    loss_scan = gc.sum(hs * weights_out) + gc.sum(h_last ** 2)
    loss_unrolled = gc.sum(gc.stack(unrolled) * weights_out) + gc.sum(h ** 2)
    v = values(1)
    f = gc.compile([hs, h_last, loss_scan, loss_unrolled, *gc.grad(loss_scan, [*w, h0, xs]),
                    *gc.grad(loss_unrolled, [*w, h0, xs])])
    got = f(**v)
    want = naive.elman(v["h0"], v["xs"], *weights(v))
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    np.testing.assert_allclose(got[1], want[-1], rtol=1e-12)
    np.testing.assert_allclose(got[2], got[3], rtol=1e-12)
    for a, b in zip(got[4:10], got[10:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert "    steps = len(x_seq)\n" in f.source and "for t in range(steps):" in f.source


@pytest.mark.parametrize("cell, gates", [("lstm", 4), ("gru", 3)])
def test_cells_match_hand_written_references_and_gradients_match_differences(cell, gates):
    g, xs, h0, w = rnn_graph(cell, gates)
    if cell == "lstm":
        c0 = g.input("c0", (None, H))

        def step(state, x):
            h, c = gc.lstm_cell(state, x, *w)
            return [h, c], h
        (h_last, c_last), hs = gc.scan(step, [h0, c0], xs)
    else:
        h_last, hs = gc.scan(lambda h, x: (gc.gru_cell(h, x, *w),) * 2, h0, xs)
    v = values(gates)
    if cell == "lstm":
        v["c0"] = RNG.normal(size=(B, H))
        want_hs, want_cs = naive.lstm(v["h0"], v["c0"], v["xs"], *weights(v))
        got_hs, got_c = gc.compile([hs, c_last])(**v)
        np.testing.assert_allclose(got_c, want_cs[-1], rtol=1e-12)
    else:
        want_hs = naive.gru(v["h0"], v["xs"], *weights(v))
        got_hs = gc.compile(hs)(**v)
    np.testing.assert_allclose(got_hs, want_hs, rtol=1e-12)
    loss = gc.sum(hs * g.constant(RNG.normal(size=(T, B, H)))) + gc.sum(h_last)
    report = gc.check_gradients(loss, [*w, h0, xs], v, rtol=1e-6, atol=1e-8)
    assert report.ok, report


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_cells_match_pytorch(cell):
    torch = pytest.importorskip("torch")
    gates = {"elman": 1, "lstm": 4, "gru": 3}[cell]
    module = {"elman": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell](I, H).double()
    g, xs, h0, w = rnn_graph(cell, gates)
    x, v = xs[0], values(gates)
    v.update({k: getattr(module, k.replace("W", "weight").replace("b_", "bias_")).detach().numpy()
              for k in ("W_ih", "W_hh", "b_ih", "b_hh")})
    h = torch.tensor(v["h0"])
    if cell == "lstm":
        out = gc.lstm_cell((h0, h0), x, *w)[0]
        want = module(torch.tensor(v["xs"][0]), (h, h))[0]
    else:
        out = (gc.elman_cell if cell == "elman" else gc.gru_cell)(h0, x, *w)
        want = module(torch.tensor(v["xs"][0]), h)
    np.testing.assert_allclose(gc.compile(out)(**v), want.detach().numpy(), rtol=1e-12)


def test_gradients_of_loop_invariant_values_summed_after_the_loop_match_the_unrolled_graph():
    """W, gamma, u, M and P are read by ops that map a steps axis (matmul, element-wise; M through a tanh and
    a transpose computed outside the loop): their gradients are summed after the loop at once. K (read by a
    concatenate, which does not map, and by a product) and s (read with a per-step scalar) are summed in the
    loop, as is the reshape of P computed outside the loop and read by the concatenate."""
    g = gc.Graph("consts")
    xs, h0 = g.input("xs", (T, None, I)), g.input("h0", (None, H))
    W, gamma, u = g.param("W", (H, I)), g.param("gamma", (H,)), g.param("u", (B, H))
    M, K, s, P = g.param("M", (H, H)), g.param("K", (1, H)), g.param("s", (H,)), g.param("P", (H,))
    consts = [W, gamma, u, M, K, s, P]

    def step(h, x):
        a = x @ W.T + h * gamma - u * 0.5 + h @ gc.tanh(M).T
        joined = gc.concatenate([h, K, gc.reshape(P, (1, H))], axis=0)
        side = gc.sum(x) * s + gc.sum(joined[1:] * gamma, axis=0) + P + h * K
        h = gc.tanh(a + side)
        return h, h

    def unrolled():
        h, out = h0, []
        for t in range(T):
            h, _ = step(h, xs[t])
            out.append(h)
        return h, gc.stack(out)
    (h_last, hs), (h_un, hs_un) = gc.scan(step, h0, xs), unrolled()
    R = g.constant(RNG.normal(size=(T, B, H)))
    loss, loss_un = gc.sum(hs * R) + gc.sum(h_last ** 2), gc.sum(hs_un * R) + gc.sum(h_un ** 2)
    grads = gc.grad(loss, consts)
    f = gc.compile([*grads, *gc.grad(loss_un, consts)])
    v = {"xs": RNG.normal(size=(T, B, I)), "h0": RNG.normal(size=(B, H)),
         **{c.name: RNG.normal(size=c.shape) * 0.3 for c in consts}}
    got = f(**v)
    for c, a, b in zip(consts, got[:len(consts)], got[len(consts):]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=c.name)
    source = gc.compile(grads).source
    assert [c.name for c in consts if f"d_{c.name}_total" in source] == ["K", "s"]
    assert gc.check_gradients(loss, consts, v, rtol=1e-6, atol=1e-8).ok


def test_a_body_numbers_its_new_free_dims_after_its_graphs():
    """A body's stand-ins carry the graph's free dims; a dim the body makes (a concatenation along the free
    batch) must not take one of their names, or two different sizes would look equal."""
    g = gc.Graph("dims")
    xs, h0, K = g.input("xs", (T, None, H)), g.input("h0", (None, H)), g.param("K", (2, H))
    _, joined = gc.scan(lambda h, x: (h + x, gc.concatenate([h, K], axis=0)), h0, xs)
    (scan,) = [n for n in g.nx if g.nx.nodes[n]["op"] == "scan"]
    body = g.nx.nodes[scan]["params"]["body"].graph
    dims = {n: body.nx.nodes[n]["shape"][0] for n in body.nx}
    assert dims["concatenate"] not in (dims["h"], dims["x"]), dims
    v = {"xs": RNG.normal(size=(T, B, H)), "h0": RNG.normal(size=(B, H)), "K": RNG.normal(size=(2, H))}
    assert gc.compile(joined)(**v).shape == (T, B + 2, H)


def test_hessian_vector_product_through_a_scan():
    g, xs, h0, w = rnn_graph("elman", 1)
    _, hs = gc.scan(lambda h, x: (gc.elman_cell(h, x, *w),) * 2, h0, xs)
    loss = gc.sum(hs ** 3)
    W_hh = w[1]
    v = values(1)
    direction = RNG.normal(size=(H, H))
    hv = gc.compile(gc.hvp(loss, W_hh, direction))(**v)
    grad = gc.compile(gc.grad(loss, W_hh))
    eps = 1e-6
    numeric = (grad(**{**v, "W_hh": v["W_hh"] + eps * direction})
               - grad(**{**v, "W_hh": v["W_hh"] - eps * direction})) / (2 * eps)
    np.testing.assert_allclose(hv, numeric, rtol=1e-6, atol=1e-8)


def test_nested_scan_differentiates():
    g = gc.Graph("nested")
    xs = g.input("xs", (3, 2, 4))            # 3 outer steps of 2 inner steps
    w = g.param("w", (4,))

    def outer(s, row):
        total, _ = gc.scan(lambda a, x: (gc.tanh(a * w + x), None), s, row)
        return total, gc.sum(total)
    last, sums = gc.scan(outer, g.constant(np.zeros(4)), xs)
    loss = gc.sum(sums) + gc.sum(last ** 2)
    value = {"xs": RNG.normal(size=(3, 2, 4)), "w": RNG.normal(size=4)}
    s, want = np.zeros(4), []
    for row in value["xs"]:
        for x in row:
            s = np.tanh(s * value["w"] + x)
        want.append(s.sum())
    np.testing.assert_allclose(gc.compile(sums)(**value), want, rtol=1e-12)
    assert gc.check_gradients(loss, [w], value, rtol=1e-6).ok


def test_reverse_scan_several_xs_ys_and_a_free_length():
    g = gc.Graph("rev")
    a = g.input("a", ("T", 3))
    b = g.param("b", ("T", 3))
    k = g.param("k", (3,))
    total, (run, prod) = gc.scan(lambda s, x: (s + x[0] * x[1] * k, [s, x[0] * s]), g.constant(np.zeros(3)),
                                 [a, b], reverse=True)
    assert run.shape == (a.shape[0], 3)
    va, vb, vk = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3)), RNG.normal(size=3)
    s, runs, prods = np.zeros(3), [None] * 5, [None] * 5
    for t in reversed(range(5)):
        runs[t], prods[t] = s, va[t] * s
        s = s + va[t] * vb[t] * vk
    got = gc.compile([total, run, prod])(a=va, b=vb, k=vk)
    for x, y in zip(got, [s, runs, prods]):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    loss = gc.sum(prod ** 2) + gc.sum(total * run[0])
    assert gc.check_gradients(loss, [b, k], {"a": va, "b": vb, "k": vk}, rtol=1e-6).ok


def test_float32_scan_stays_float32_and_free_batch_dims_are_fed():
    g = gc.Graph("f32", dtype="float32")
    xs = g.input("xs", (None, None, I))
    W = g.param("W", (H, I))
    h_last, _ = gc.scan(lambda h, x: (gc.tanh(x @ W.T + h), None), g.input("h0", (None, H)), xs)
    f = gc.compile([h_last, gc.grad(gc.sum(h_last), W)])
    out = f(xs=np.ones((6, 2, I), "float32"), h0=np.zeros((2, H), "float32"), W=np.ones((H, I), "float32"))
    assert [o.dtype for o in out] == [np.float32, np.float32] and out[0].shape == (2, H)


def test_generated_loop_reads_like_hand_written_code():
    g, xs, h0, w = rnn_graph("elman", 1)
    _, hs = gc.scan(lambda h, x: (gc.elman_cell(h, x, *w, name="h_new"),) * 2, h0, xs, name="rnn")
    source = gc.compile(hs).source
    # the forward pass alone stacks what it returns, not the history back-propagation would read
    assert ("    for t in range(steps):\n        h, y0 = _step(h, x_seq[t], W_ih, W_hh, b_ih, b_hh)\n"
            "        if t == 0:\n            ys0 = np.empty((steps,) + np.shape(y0), np.result_type(y0))\n"
            "        ys0[t] = y0\n    return h, ys0\n") in source
    assert "rnn_0, rnn_1 = _scan(h0, xs, W_ih, W_hh, b_ih, b_hh)" in source
    back = gc.compile([hs, gc.grad(gc.sum(hs ** 2), w[1])]).source
    assert "    for t in range(steps):\n        h_history[t] = h\n        h, y0 = _step(h, x_seq[t]" in back
    # not the values only back-propagation could read (outputs 2 to 6): its VJP reads only h_new
    assert "rnn_0, rnn_1, rnn_7 = _scan(h0, xs, W_ih, W_hh, b_ih, b_hh)" in back
    assert "for t in range(steps - 1, -1, -1):" in back


def test_bptt_reads_what_the_forward_loop_stacked_instead_of_recomputing_it():
    g, xs, h0, w = rnn_graph("lstm", 4)
    c0 = g.input("c0", (None, H))

    def step(state, x):
        h, c = gc.lstm_cell(state, x, *w)
        return [h, c], h
    _, hs = gc.scan(step, [h0, c0], xs, name="lstm")
    loss = gc.sum(hs * g.constant(RNG.normal(size=(T, B, H))))
    source = gc.compile(gc.grad(loss, list(w))).source
    backward = source[source.index("def _step_2"):source.index("def run")]
    assert "tanh_4_saved" in backward and " @ W_hh.T" not in backward and "np.tanh(" not in backward
    assert "@ W_hh.T" in source[source.index("def _step("):source.index("def _step_2")]
    forward = gc.compile(hs).source     # no gradient: nothing more is stacked
    assert forward.count("np.empty(") == 1 and "return state0, state1, ys0\n" in forward
    v = values(4) | {"c0": RNG.normal(size=(B, H))}
    assert gc.check_gradients(loss, list(w), v, rtol=1e-6, atol=1e-8).ok


def test_a_sequence_of_length_0_is_refused_naming_the_scan():
    g, xs, h0, w = rnn_graph("elman", 1, steps=None)
    _, hs = gc.scan(lambda h, x: (gc.elman_cell(h, x, *w),) * 2, h0, xs, name="rnn")
    f = gc.compile(hs)
    v = values(1, steps=0)
    with pytest.raises(gc.FeedError, match=r"computing node rnn failed on the fed values: scan over a sequence "
                                           r"of length 0"):
        f(**v)
    assert f(**values(1, steps=2)).shape == (2, B, H)


@pytest.mark.parametrize("body, error, message", [
    (lambda h, x: (h[:, :2], h), gc.ShapeError, "the new carry 'slice' has shape (None, 2), but its init 'h0' has"),
    (lambda h, x: (gc.cast(h, "float32"), h), gc.DTypeError, "is float32, but its init 'h0' is float64"),
    (lambda h, x: h, gc.GraphError, "body must return (new_carry, y)"),
    (lambda h, x: ([h, h], h), gc.GraphError, "body returned 2 carries for 1 in init"),
    (lambda h, x: (h, "y"), gc.GraphError, "the y of body must be a Tensor or a list of Tensors"),
])
def test_bad_bodies_are_refused_and_leave_the_graph_as_it_was(body, error, message):
    g = gc.Graph("bad")
    xs, h0 = g.input("xs", (T, None, H)), g.input("h0", (None, H))
    before = set(g.nx)
    with pytest.raises(error) as e:
        gc.scan(body, h0, xs)
    assert message in str(e.value)
    assert set(g.nx) == before


def test_scan_refuses_scalar_sequences_and_other_graphs():
    g, other = gc.Graph("a"), gc.Graph("b")
    with pytest.raises(gc.ShapeError, match="'s' is a scalar"):
        gc.scan(lambda c, x: (c, x), g.input("c", ()), g.input("s", ()))
    with pytest.raises(gc.GraphError, match="'c2' belongs to graph 'a', not 'b'"):
        gc.scan(lambda c, x: (c, x), g.input("c2", ()), other.input("xs", (3,)))
    p, q, c = g.input("p", (3,)), g.input("q", (4,)), g.input("c3", ())
    before = set(g.nx)
    with pytest.raises(gc.ShapeError, match="differ in length"):
        gc.scan(lambda c, x: (c * g.constant(2.0), x[0] + x[1]), c, [p, q])
    assert set(g.nx) == before
    with pytest.raises(gc.GraphError, match="xs is empty"):
        gc.scan(lambda c, x: (c, x), [], [])


def test_integer_carries_and_xs_get_no_gradient_but_drive_the_steps():
    g = gc.Graph("count")
    xs = g.param("xs", (4, 3))
    steps = g.input("steps", (4,), "int64")
    w = g.param("w", (3,))

    def body(carry, x):
        count, total = carry
        value, k = x
        return [count + k, total * w + value * gc.cast(count, "float64")], None
    (count, total), _ = gc.scan(body, [g.constant(np.int64(1)), g.constant(np.zeros(3))], [xs, steps])
    loss = gc.sum(total ** 2)
    value = {"xs": RNG.normal(size=(4, 3)), "steps": np.array([1, 2, 0, 3]), "w": RNG.normal(size=3)}
    c, t = 1, np.zeros(3)
    for x, k in zip(value["xs"], value["steps"]):
        c, t = c + k, t * value["w"] + x * c
    got_count, got_total = gc.compile([count, total])(**value)
    assert got_count == c
    np.testing.assert_allclose(got_total, t, rtol=1e-12)
    assert gc.check_gradients(loss, [xs, w], value, rtol=1e-6).ok


def test_jvp_and_compile_training_through_a_scan():
    g, xs, h0, w = rnn_graph("elman", 1)
    labels = g.input("labels", (None,), "int64")
    W_out = g.param("W_out", (H, 3))
    h_last, _ = gc.scan(lambda h, x: (gc.elman_cell(h, x, *w), None), h0, xs)
    loss = gc.cross_entropy(h_last @ W_out, labels)
    v = values(1)
    v.update(labels=np.array([0, 2, 1]), W_out=RNG.normal(size=(H, 3)))
    direction = RNG.normal(size=(H, H))
    tangent = gc.compile(gc.jvp(loss, [w[1]], [g.input("t", (H, H))]))(**v, t=direction)
    f = gc.compile(loss)
    eps = 1e-6
    numeric = (f(**{**v, "W_hh": v["W_hh"] + eps * direction}) - f(**{**v, "W_hh": v["W_hh"] - eps * direction}))
    np.testing.assert_allclose(tangent, numeric / (2 * eps), rtol=1e-6)
    params = [*w, W_out]
    step = gc.compile_training(loss, params)
    grads = gc.compile(gc.grad(loss, params))(**v)
    updated = {p.name: v[p.name].copy() for p in params}
    step.train_step(updated, lr=0.1, **{k: v[k] for k in ("xs", "h0", "labels")})
    for p, d in zip(params, grads):
        np.testing.assert_allclose(updated[p.name], v[p.name] - 0.1 * d, rtol=1e-12)


def test_inner_scan_closing_over_the_outer_carry_differentiates_twice():
    g = gc.Graph("nested2")
    xs = g.input("xs", (3, 2, 4))
    w = g.param("w", (4,))

    def outer(s, row):
        inner, ys = gc.scan(lambda a, x: (gc.tanh(a * s + x * w), a), s, row)
        return inner, gc.sum(ys)
    last, sums = gc.scan(outer, g.constant(np.full(4, 0.5)), xs)
    loss = gc.sum(sums) + gc.sum(last ** 2)
    v = {"xs": RNG.normal(size=(3, 2, 4)), "w": RNG.normal(size=4)}
    s, want = np.full(4, 0.5), []
    for row in v["xs"]:
        a, total = s, 0.0
        for x in row:
            total += a.sum()
            a = np.tanh(a * s + x * v["w"])
        want.append(total)
        s = a
    np.testing.assert_allclose(gc.compile(sums)(**v), want, rtol=1e-12)
    assert gc.check_gradients(loss, [w], v, rtol=1e-6).ok
    direction = RNG.normal(size=4)
    hv = gc.compile(gc.hvp(loss, w, direction))(**v)
    grad, eps = gc.compile(gc.grad(loss, w)), 1e-6
    numeric = (grad(**{**v, "w": v["w"] + eps * direction}) - grad(**{**v, "w": v["w"] - eps * direction})) / (2 * eps)
    np.testing.assert_allclose(hv, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("names", [("t", "x_seq"), ("len", "list"), ("ys0", "h_history")])
def test_body_parameter_names_never_clash_with_the_loop_s_own(names):
    g = gc.Graph("clash")
    xs = g.input("xs", (3, 2))
    w = g.param("w", (2,))
    namespace = {"gc": gc, "w": w}
    exec(f"def body({names[0]}, {names[1]}):\n    return gc.tanh({names[0]} * w + {names[1]}), {names[0]}",  # noqa: S102
         namespace)
    last, ys = gc.scan(namespace["body"], g.constant(np.zeros(2)), xs)
    loss = gc.sum(ys) + gc.sum(last)
    v = {"xs": RNG.normal(size=(3, 2)), "w": RNG.normal(size=2)}
    s, total = np.zeros(2), 0.0
    for x in v["xs"]:
        total += s.sum()
        s = np.tanh(s * v["w"] + x)
    np.testing.assert_allclose(gc.compile(loss)(**v), total + s.sum(), rtol=1e-12)
    assert gc.check_gradients(loss, [w], v).ok


def test_a_scan_without_carries_is_a_map_over_steps():
    g = gc.Graph("map")
    xs = g.param("xs", (4, 3))
    _, ys = gc.scan(lambda carry, x: ([], gc.tanh(x) * 2.0), [], xs)
    value = RNG.normal(size=(4, 3))
    np.testing.assert_allclose(gc.compile(ys)(xs=value), np.tanh(value) * 2.0, rtol=1e-12)
    assert gc.check_gradients(gc.sum(ys ** 2), [xs], {"xs": value}).ok


def test_token_ids_read_by_a_take_in_the_body_are_bounds_checked_when_fed():
    g = gc.Graph("lm")
    ids = g.input("ids", (None, None), "int64")          # (time, batch)
    E = g.param("E", (5, H))
    W_hh = g.param("W_hh", (H, H))
    h_last, _ = gc.scan(lambda h, i: (gc.tanh(gc.take(E, i) + h @ W_hh), None), g.input("h0", (None, H)), ids)
    f = gc.compile(h_last)
    v = {"h0": np.zeros((2, H)), "E": RNG.normal(size=(5, H)), "W_hh": RNG.normal(size=(H, H))}
    assert f(ids=np.array([[0, 4], [3, 1]]), **v).shape == (2, H)
    with pytest.raises(gc.FeedError, match=r"feed 'ids': -1 at flat index 2 is not an index into axis 0 of 'E'"):
        f(ids=np.array([[0, 4], [-1, 1]]), **v)
    with pytest.raises(gc.FeedError, match="it must be in \\[0, 5\\)"):
        f(ids=np.array([[0, 5], [3, 1]]), **v)
