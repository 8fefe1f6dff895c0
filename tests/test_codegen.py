"""Generated source: readable, deterministic, safe for hostile names, standalone when exported."""
import ast
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphcomp as gc
from founding import build, feed
from graphcomp.codegen.names import Namer, identifier


def test_source_is_deterministic_across_fresh_builds():
    sources = []
    for _ in range(2):
        g, loss, params = build()
        sources.append((gc.compile([loss, *gc.grad(loss, params)]).source,
                        gc.compile_training(loss, params).source))
    assert sources[0] == sources[1]


def test_backward_reads_like_hand_written_code():
    g, loss, params = build()
    source = gc.compile_training(loss, params).source
    assert "import numpy as np" in source
    assert "import graphcomp" not in source
    for line in ["d_h = d_logits @ W2.T", "d_W2 = h.T @ d_logits", "d_b2 = d_logits.sum(axis=0)",
                 "d_W1 = x.T @ d_add", "W1 -= step_W1", "step_W1 = x.T @ step_add",
                 "= lr / _t", "h = np.maximum(add, 0, out=add)",
                 "d_add = np.multiply(d_h, _t2, out=d_h)"]:
        assert line in source, line
    # every statement computing a node has a comment naming that node right above it
    lines = source.splitlines()
    for func in ast.parse(source).body:
        if not isinstance(func, ast.FunctionDef) or func.name.startswith("_"):
            continue
        for stmt in func.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) \
                    and not isinstance(stmt.value, ast.Subscript):      # params['W1'] lookups
                target = stmt.targets[0].id
                assert lines[stmt.lineno - 2].strip().startswith(f"# {target} = "), target


def test_in_place_reuse_never_touches_fed_returned_or_viewed_arrays():
    g = gc.Graph()
    x = g.input("x", (2, 3))
    a = gc.exp(x, name="a")                     # returned: must survive
    b = gc.tanh(a, name="b")                    # dead after c: may be reused
    c = gc.mul(b, 2.0, name="c")
    v = gc.reshape(c, (3, 2), name="v")         # a view of c: c must not be reused
    d = gc.add(c, 1.0, name="d")
    e = gc.neg(gc.exp(d), name="e")
    f = gc.compile([a, v, e, x])
    assert "np.multiply(b, 2.0, out=b)" in f.source
    assert "out=c" not in f.source and "out=x" not in f.source and "out=a" not in f.source
    xs = np.arange(6.0).reshape(2, 3) / 10
    saved = xs.copy()
    got_a, got_v, got_e, got_x = f(x=xs)
    np.testing.assert_array_equal(xs, saved)
    np.testing.assert_allclose(got_a, np.exp(saved))
    np.testing.assert_allclose(got_v, (2 * np.tanh(np.exp(saved))).reshape(3, 2))
    np.testing.assert_allclose(got_e, -np.exp(2 * np.tanh(np.exp(saved)) + 1))


def test_dead_arrays_are_recycled_for_later_results_of_their_shape():
    g = gc.Graph()
    x, W, V = g.input("x", (4, 3)), g.param("W", (3, 3)), g.param("V", (3, 3))
    h = gc.tanh(x @ W, name="h")
    s = gc.sum(h, axis=1, name="s")             # h's last read
    k = gc.matmul(x, V, name="k")               # h's shape: written into h's array
    m = gc.exp(x, name="m")                     # x is fed, never written
    rng = np.random.default_rng(3)
    values = {"x": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 3)), "V": rng.normal(size=(3, 3))}
    f = gc.compile([s, k, m])
    assert "k = np.matmul(x, V, out=h)" in f.source and "(into h, which is dead)" in f.source
    got_s, got_k, got_m = f(**values)
    np.testing.assert_allclose(got_s, np.tanh(values["x"] @ values["W"]).sum(axis=1))
    np.testing.assert_allclose(got_k, values["x"] @ values["V"])
    np.testing.assert_allclose(got_m, np.exp(values["x"]))
    kept = gc.compile([h, s, k])                # h returned: its array is never reused
    assert "out=h" not in kept.source
    np.testing.assert_allclose(kept(**values)[0], np.tanh(values["x"] @ values["W"]))


def test_a_reshape_takes_over_the_array_it_views_once_nothing_else_reads_that():
    g = gc.Graph()
    x, W = g.input("x", (4, 6)), g.param("W", (6, 6))
    r = gc.reshape(gc.matmul(x, W, name="m"), (2, 12), name="r")    # m's last read: r may take m over
    y = gc.relu(r, name="y")
    e = gc.exp(x, name="e")
    s = gc.reshape(e, (24,), name="s")          # e is read again after s: s views it and must stay as it is
    z = gc.neg(s, name="z")
    t = gc.mul(e, 2.0, name="t")
    f = gc.compile([y, z, t])
    assert "y = np.maximum(r, 0, out=r)" in f.source
    assert "out=s" not in f.source and "out=e" not in f.source
    rng = np.random.default_rng(4)
    xs, Ws = rng.normal(size=(4, 6)), rng.normal(size=(6, 6))
    got_y, got_z, got_t = f(x=xs, W=Ws)
    np.testing.assert_allclose(got_y, np.maximum(xs @ Ws, 0).reshape(2, 12))
    np.testing.assert_allclose(got_z, -np.exp(xs).reshape(24))
    np.testing.assert_allclose(got_t, 2 * np.exp(xs))


def test_large_arrays_nothing_reads_any_more_are_deleted_after_the_last_statement_naming_them():
    g = gc.Graph()
    x, W = g.input("x", (None, 64, 128)), g.param("W", (128, 128))
    a = gc.matmul(x, W, name="a")               # large: 64 x 128 per batch row
    r = gc.reshape(a, (-1, 128, 64), name="r")  # r takes a over: one array, two names
    t = gc.tanh(r, name="t")
    s = gc.sum(t, axis=(1, 2), name="s")        # the last read of t (and of a's array)
    u = gc.exp(x, name="u")                     # returned: never deleted
    small = gc.sum(gc.exp(s), name="small")     # (n,): not large, never deleted
    f = gc.compile([small, u])
    body = f.source[f.source.index("def run"):]
    assert "    del a, r, t\n" in body
    assert body.index("del a, r, t") > body.index("s = ") and "del u" not in body and "del s" not in body
    xs, Ws = np.random.default_rng(5).normal(size=(2, 64, 128)), np.random.default_rng(6).normal(size=(128, 128))
    got_small, got_u = f(x=xs, W=Ws)
    np.testing.assert_allclose(got_small, np.exp(np.tanh((xs @ Ws).reshape(2, 128, 64)).sum(axis=(1, 2))).sum())
    np.testing.assert_allclose(got_u, np.exp(xs))


def test_a_name_read_only_for_its_shape_is_deleted_after_that_read():
    g = gc.Graph()
    x, W = g.input("x", (None, 64, 128)), g.param("W", (128, 128))
    a = gc.matmul(x, W, name="a")
    loss = gc.sum(gc.tanh(gc.reshape(a, (-1, 64 * 128))) ** 2, name="loss")
    f = gc.compile([loss, gc.grad(loss, W)])       # reshape_like(..., a) reads a's shape late in the backward
    assert "a.shape" in f.source
    code = [line for line in f.source[f.source.index("def run"):].splitlines() if not line.strip().startswith("#")]
    deletes = [(k, line.split("del ")[1].split(", ")) for k, line in enumerate(code) if line.startswith("    del ")]
    assert deletes and any("a" in names for _, names in deletes)
    for k, names in deletes:
        for name in names:
            assert not any(re.search(rf"(?<![\w.]){name}\b", line) for line in code[k + 1:]), (name, code)
    xs, Ws = np.random.default_rng(5).normal(size=(2, 64, 128)), np.random.default_rng(6).normal(size=(128, 128)) / 10
    got_loss, got_dW = f(x=xs, W=Ws)
    t = np.tanh(xs @ Ws)
    np.testing.assert_allclose(got_dW, np.einsum("nij,nik->jk", xs, 2 * t * (1 - t * t)), rtol=1e-9)


def test_forward_cache_survives_backward_and_train_step_reuse():
    g, loss, params = build()
    step = gc.compile_training(loss, params)
    values = feed()
    p = {k: values[k] for k in ("W1", "b1", "W2", "b2")}
    loss_value, cache = step.forward(p, x=values["x"], y=values["y"])
    saved = [np.array(c, copy=True) for c in cache]
    step.backward(cache)
    step.backward(cache)
    for before, after in zip(saved, cache):
        np.testing.assert_array_equal(before, after)


def test_backward_comments_name_the_chain_rule_term():
    g, loss, params = build()
    source = gc.compile_training(loss, params).source
    assert "# d_W2 = h.T @ d_logits    <- dloss/dW2: VJP of matmul_1 = h @ W2" in source


def test_training_module_splits_forward_and_backward():
    g, loss, params = build()
    step = gc.compile_training(loss, params)
    values = feed()
    p = {k: values[k].copy() for k in ("W1", "b1", "W2", "b2")}
    loss_value, cache = step.forward(p, x=values["x"], y=values["y"])
    grads = step.backward(cache)
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    before = {k: v.copy() for k, v in p.items()}
    loss_step = step.train_step(p, x=values["x"], y=values["y"], lr=0.5)
    assert loss_step == pytest.approx(loss_value, rel=1e-15)
    for k in p:
        np.testing.assert_allclose(p[k], before[k] - 0.5 * grads[k], rtol=1e-13)


@pytest.mark.parametrize("hostile", [
    "hidden layer", "it's", 'say "hi"', "line\nbreak", "__import__('os').system('echo pwned')",
    "class", "np", "lr", "params", "1st", "héllo", "#comment", "a\\b", '"""', "x = 1; y",
])
def test_hostile_node_names_give_safe_valid_code(hostile, tmp_path):
    g = gc.Graph("hostile \"graph\"\n")
    x = g.input(hostile, (2,))
    w = g.param(hostile + "_w", (2,))
    out = gc.tanh(x * w, name=hostile + " out")
    loss = gc.sum(out, name=hostile + "'loss")
    f = gc.compile([loss, gc.grad(loss, w)])
    compile(f.source, "generated", "exec")          # valid Python
    xs, ws = np.array([0.5, -1.0]), np.array([2.0, 0.3])
    value, grad = f(**{hostile: xs, hostile + "_w": ws})
    assert value == pytest.approx(np.tanh(xs * ws).sum())
    np.testing.assert_allclose(grad, xs * (1 - np.tanh(xs * ws) ** 2))
    if hostile not in ("lr", "params"):
        step = gc.compile_training(loss, [w])
        compile(step.source, "generated", "exec")
        p = {hostile + "_w": ws.copy()}
        step.train_step(p, **{hostile: xs}, lr=0.1)


def test_hostile_names_never_execute(tmp_path):
    marker = tmp_path / "pwned"
    g = gc.Graph()
    name = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    x = g.input(name, (1,))
    f = gc.compile(gc.exp(x, name=name + "\n" + name))
    f(**{name: np.zeros(1)})
    f.save(tmp_path / "m.py")
    subprocess.run([sys.executable, "-I", str(tmp_path / "m.py")], check=True)
    assert not marker.exists()


def test_identifiers_are_safe_and_unique():
    namer = Namer()
    names = [namer(n) for n in ["a b", "a_b", "a-b", "for", "np", "", "9", "a b"]]
    assert names == ["a_b", "a_b_2", "a_b_3", "for_", "np_", "n_", "n_9", "a_b"]
    assert all(n.isidentifier() for n in names)
    assert identifier("__import__('os')").isidentifier()


def _run_isolated(script, cwd):
    """Run ``script`` in a fresh interpreter in which graphcomp cannot be imported."""
    prelude = "import sys\nsys.modules['graphcomp'] = None\n"
    done = subprocess.run([sys.executable, "-I", "-c", prelude + textwrap.dedent(script)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_exported_gradient_module_runs_without_graphcomp(tmp_path):
    g, loss, params = build()
    f = gc.compile([loss, *gc.grad(loss, params)])
    path = f.save(tmp_path / "mlp_grad.py")
    values = feed()
    np.savez(tmp_path / "feed.npz", **values)
    out = _run_isolated("""
        import json, runpy
        import numpy as np
        try:
            import graphcomp
            raise SystemExit("graphcomp importable")
        except ImportError:
            pass
        m = runpy.run_path("mlp_grad.py")
        feed = dict(np.load("feed.npz"))
        names = [name for name, shape, dtype in m["INPUTS"]]
        outs = m["run"](*(feed[n] for n in names))
        print(json.dumps([np.asarray(o).tolist() for o in outs]))
    """, tmp_path)
    got = json.loads(out)
    for a, b in zip(got, f(**values)):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    assert path.endswith("mlp_grad.py")


def test_exported_training_module_trains_without_graphcomp(tmp_path):
    g, loss, params = build()
    step = gc.compile_training(loss, params)
    step.save(tmp_path / "mlp_train.py")
    values = feed(batch=64)
    np.savez(tmp_path / "feed.npz", **values)
    out = _run_isolated("""
        import json, runpy
        import numpy as np
        m = runpy.run_path("mlp_train.py")
        feed = dict(np.load("feed.npz"))
        params = {k: feed[k].copy() for k in m["PARAMS"]}
        losses = [float(m["train_step"](params, x=feed["x"], y=feed["y"], lr=0.5)) for _ in range(20)]
        loss, cache = m["forward"](**params, x=feed["x"], y=feed["y"])
        grads = m["backward"](cache)
        print(json.dumps(losses))
    """, tmp_path)
    losses = json.loads(out)
    assert losses[-1] < 0.5 * losses[0]


def test_save_is_atomic_and_reports_bad_paths(tmp_path):
    g, loss, params = build()
    f = gc.compile(loss)
    target = tmp_path / "out.py"
    target.write_text("previous contents\n")
    with pytest.raises(OSError):
        f.save(tmp_path / "missing-dir" / "out.py")
    assert target.read_text() == "previous contents\n"
    f.save(target)
    assert target.read_text() == f.source
    assert [p.name for p in tmp_path.iterdir()] == ["out.py"]


def test_float32_end_to_end():
    g, loss, params = build(dtype="float32")
    step = gc.compile_training(loss, params)
    values = feed(dtype="float32")
    p = {k: values[k] for k in ("W1", "b1", "W2", "b2")}
    loss_value, cache = step.forward(p, x=values["x"], y=values["y"])
    assert np.asarray(loss_value).dtype == np.float32
    assert all(gr.dtype == np.float32 for gr in step.backward(cache).values())
    step.train_step(p, x=values["x"], y=values["y"], lr=0.1)
    assert all(v.dtype == np.float32 for v in p.values())


def test_deep_network_compiles_and_trains():
    g = gc.Graph("deep")
    x = g.input("x", ("batch", 4))
    y = g.input("y", ("batch",), dtype="int64")
    h, params = x, []
    for i in range(60):
        W = g.param(f"W{i}", (4, 4))
        b = g.param(f"b{i}", (4,))
        params += [W, b]
        h = gc.tanh(h @ W + b)
    loss = gc.cross_entropy(h, y, name="loss")
    step = gc.compile_training(loss, params)
    rng = np.random.default_rng(0)
    p = {t.name: rng.normal(size=t.shape) * 0.5 for t in params}
    first = step.train_step(p, x=rng.normal(size=(8, 4)), y=rng.integers(0, 4, 8), lr=0.1)
    assert np.isfinite(first)
    with pytest.raises(gc.FeedError, match="free dim 'batch'"):
        step.train_step(p, x=np.ones((8, 4)), y=np.zeros(7, dtype=np.int64), lr=0.1)
