"""Optimizers as generated code: each update against a hand-written NumPy reference (PyTorch's definitions),
schedules, the state as a checked third kind of value, and the exported module training without graphcomp."""
import math
import pathlib
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcomp as gc
from founding import build, feed, hand_backprop

optim = gc.optim
PARAM_NAMES = ["W1", "b1", "W2", "b2"]
STEPS = 6


# --- hand-written references, straight from the papers / torch.optim docs ----------------------

def ref_factor(schedule, k):
    """The schedule's factor at step k (steps taken before this one)."""
    if isinstance(schedule, optim.StepDecay):
        return schedule.gamma ** (k // schedule.every)
    if isinstance(schedule, optim.Cosine):
        return schedule.final + (1 - schedule.final) * (1 + math.cos(math.pi * min(k, schedule.steps)
                                                                     / schedule.steps)) / 2
    if isinstance(schedule, optim.Warmup):
        return min(1.0, (k + 1) / schedule.steps) * ref_factor(schedule.then, max(k - schedule.steps, 0))
    return 1.0


def ref_train(opt, params, x, y, steps):
    """``steps`` updates of ``opt`` written out naively; returns the losses and the final params."""
    params = {k: v.copy() for k, v in params.items()}
    slots = {k: {"m": np.zeros_like(v), "v": np.zeros_like(v), "buf": np.zeros_like(v)} for k, v in params.items()}
    losses = []
    for k in range(steps):
        loss, *grads = hand_backprop(x, y, *(params[n] for n in PARAM_NAMES))
        losses.append(loss)
        grads = dict(zip(PARAM_NAMES, grads))
        lr = opt.lr * ref_factor(opt.schedule, k)
        if opt.clip_norm is not None:
            norm = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads.values()))
            grads = {n: g * min(1.0, opt.clip_norm / (norm + 1e-6)) for n, g in grads.items()}
        for n, g in grads.items():
            w, s = params[n], slots[n]
            if isinstance(opt, optim.AdamW):
                w = w * (1 - lr * opt.weight_decay)
            elif opt.weight_decay:
                g = g + opt.weight_decay * w
            if isinstance(opt, optim.Adam):           # Adam and AdamW
                s["m"] = opt.b1 * s["m"] + (1 - opt.b1) * g
                s["v"] = opt.b2 * s["v"] + (1 - opt.b2) * g ** 2
                m_hat = s["m"] / (1 - opt.b1 ** (k + 1))
                v_hat = s["v"] / (1 - opt.b2 ** (k + 1))
                w = w - lr * m_hat / (np.sqrt(v_hat) + opt.eps)
            elif isinstance(opt, optim.RMSprop):
                s["v"] = opt.alpha * s["v"] + (1 - opt.alpha) * g ** 2
                w = w - lr * g / (np.sqrt(s["v"]) + opt.eps)
            elif opt.momentum:
                s["buf"] = opt.momentum * s["buf"] + g
                w = w - lr * (g + opt.momentum * s["buf"] if opt.nesterov else s["buf"])
            else:
                w = w - lr * g
            params[n] = w
    return losses, params


@dataclass
class Case:
    opt: object
    dtype: str = "float64"
    id: str = field(default="")

    def __str__(self):
        return self.id or str(self.opt)


CASES = [
    Case(optim.SGD(0.3)),
    Case(optim.SGD(0.3, momentum=0.9)),
    Case(optim.SGD(0.3, momentum=0.9, nesterov=True, weight_decay=0.01)),
    Case(optim.SGD(0.5, clip_norm=0.1, schedule=optim.StepDecay(2, 0.5))),
    Case(optim.Adam()),
    Case(optim.Adam(lr=0.05, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1)),
    Case(optim.Adam(lr=0.05, clip_norm=0.5, schedule=optim.Warmup(3, optim.Cosine(4, final=0.1)))),
    Case(optim.AdamW(lr=0.05)),
    Case(optim.AdamW(lr=0.05, weight_decay=0.5, clip_norm=0.2, schedule=optim.Cosine(5))),
    Case(optim.RMSprop()),
    Case(optim.RMSprop(lr=0.01, alpha=0.9, weight_decay=0.05, schedule=optim.Warmup(4))),
    Case(optim.Adam(lr=0.01, weight_decay=0.01), dtype="float32", id="Adam float32"),
    Case(optim.SGD(0.1, momentum=0.5, nesterov=True), dtype="float32", id="SGD Nesterov float32"),
]


def test_every_optimizer_and_schedule_has_a_case():
    kinds = {type(c.opt) for c in CASES}
    assert kinds == {optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop}
    schedules = {type(c.opt.schedule) for c in CASES} | {type(c.opt.schedule.then) for c in CASES
                                                         if isinstance(c.opt.schedule, optim.Warmup)}
    assert schedules == {optim.Constant, optim.StepDecay, optim.Cosine, optim.Warmup}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_update_matches_the_reference_over_several_steps(case):
    g, loss, params = build(n_in=6, n_hidden=5, n_out=3, dtype=case.dtype)
    step = gc.compile_training(loss, params, optimizer=case.opt)
    values = feed(batch=8, n_in=6, n_hidden=5, n_out=3, dtype=case.dtype)
    p = {n: values[n].copy() for n in PARAM_NAMES}
    state = step.init_state(p)
    losses = [float(step.train_step(p, state, x=values["x"], y=values["y"])) for _ in range(STEPS)]
    ref64 = {n: values[n].astype(np.float64) for n in PARAM_NAMES}
    ref_losses, ref = ref_train(case.opt, ref64, values["x"].astype(np.float64), values["y"], STEPS)
    tol = dict(rtol=1e-9, atol=1e-12) if case.dtype == "float64" else dict(rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(losses, ref_losses, **tol)
    for n in PARAM_NAMES:
        assert p[n].dtype == case.dtype
        np.testing.assert_allclose(p[n], ref[n], **tol, err_msg=n)
    assert int(state["step"]) == STEPS
    assert losses[-1] < losses[0]


def test_source_shows_the_update_rules_with_their_comments():
    g, loss, params = build()
    source = gc.compile_training(loss, params, optimizer=optim.Adam(weight_decay=0.1)).source
    for line in ["B1 = 0.9", "# Adam: m_W1 = B1*m_W1 + (1-B1)*d_W1", "m_W1 *= B1", "m_W1 += (1 - B1) * d_W1",
                 "# Adam weight decay (L2): d_W1 += WEIGHT_DECAY * W1", "def init_state(params):",
                 "def train_step(params, state, x, y):", "lr_t = lr * (1 - B2 ** (t + 1)) ** 0.5 / (1 - B1 ** (t + 1))",
                 "STATE = (('step', (), 'int64'), ('W1.m', (64, 32), 'float64'),"]:
        assert line in source, line
    assert source == gc.compile_training(*build()[1:], optimizer=optim.Adam(weight_decay=0.1)).source


# --- schedules, through the generated code: d(sum(w))/dw = 1, so SGD moves w by -lr each step ----

SCHEDULES = [
    optim.Constant(),
    optim.StepDecay(3, 0.5),
    optim.Cosine(7),
    optim.Cosine(5, final=0.2),
    optim.Warmup(4),
    optim.Warmup(2, optim.StepDecay(2, 0.1)),
    optim.Warmup(3, optim.Cosine(6, final=0.5)),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_schedule_values(schedule):
    g = gc.Graph("lin")
    w = g.param("w", (1,))
    step = gc.compile_training(gc.sum(w), [w], optimizer=optim.SGD(2.0, schedule=schedule))
    p = {"w": np.zeros(1)}
    state = step.init_state(p)
    got = []
    for _ in range(12):
        before = p["w"][0]
        step.train_step(p, state)
        got.append(before - p["w"][0])
    np.testing.assert_allclose(got, [2.0 * ref_factor(schedule, k) for k in range(12)], rtol=1e-12, atol=1e-13)


# --- state: a checked third kind of value ----------------------------------------------------------

@pytest.fixture
def adam():
    g, loss, params = build(n_in=6, n_hidden=5, n_out=3)
    step = gc.compile_training(loss, params, optimizer=optim.Adam(lr=0.1))
    values = feed(batch=8, n_in=6, n_hidden=5, n_out=3)
    p = {n: values[n].copy() for n in PARAM_NAMES}
    return step, p, step.init_state(p), dict(x=values["x"], y=values["y"])


def _drop(state, name):
    del state[name]


def _read_only(state, name):
    state[name].flags.writeable = False


BAD_STATE = [
    ("missing", lambda s: _drop(s, "W1.m"), r"missing state 'W1.m' \(shape \(6, 5\), float64\); step.init_state"),
    ("extra", lambda s: s.update(extra=np.zeros(2)), r"unknown state 'extra'"),
    ("list", lambda s: s.update({"b1.v": [0.0] * 5}), r"state 'b1.v' must be a NumPy array \(float64\)"),
    ("dtype", lambda s: s.update({"b1.v": np.zeros(5, np.float32)}), r"state 'b1.v': dtype float32, expected float64"),
    ("shape", lambda s: s.update({"W2.v": np.zeros((3, 5))}), r"state 'W2.v': shape \(3, 5\), expected \(5, 3\)"),
    ("read-only", lambda s: _read_only(s, "step"), r"state 'step' is read-only; train_step updates the state"),
    ("step dtype", lambda s: s.update(step=np.zeros((), np.int32)), r"state 'step': dtype int32, expected int64"),
]


@pytest.mark.parametrize("what, spoil, message", BAD_STATE, ids=[b[0] for b in BAD_STATE])
def test_bad_state_is_refused_and_nothing_changes(adam, what, spoil, message):
    step, p, state, data = adam
    step.train_step(p, state, **data)
    spoil(state)
    before = {k: v.copy() for k, v in p.items()}
    kept = {k: np.array(v, copy=True) for k, v in state.items() if isinstance(v, np.ndarray)}
    with pytest.raises(gc.FeedError, match=message):
        step.train_step(p, state, **data)
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])
    for k, v in kept.items():
        np.testing.assert_array_equal(state[k], v)


def test_state_must_be_a_dict(adam):
    step, p, state, data = adam
    with pytest.raises(gc.FeedError, match=r"state must be a dict of name -> array"):
        step.train_step(p, list(state.values()), **data)


def test_init_state_checks_params(adam):
    step, p, state, data = adam
    with pytest.raises(gc.FeedError, match=r"param 'W1' must be a NumPy array \(float64\)"):
        step.init_state(dict(p, W1=p["W1"].tolist()))
    assert set(state) == {"step", *(f"{n}.{s}" for n in PARAM_NAMES for s in ("m", "v"))}
    assert state["step"].shape == () and state["step"].dtype == np.int64


def test_predict_is_the_forward_pass_only(adam):
    step, p, state, data = adam
    scores = step.predict(p, x=data["x"])
    assert scores.shape == (8, 3) and (step.scores, step.labels) == ("log_softmax", "y")
    loss, _ = step.forward(p, **data)
    np.testing.assert_allclose(loss, -scores[np.arange(8), data["y"]].mean())


def test_a_loss_without_labels_has_no_predict():
    g = gc.Graph("lin")
    w = g.param("w", (3,))
    step = gc.compile_training(gc.sum(w * w), [w], optimizer=optim.SGD(0.1))
    with pytest.raises(gc.GraphError, match=r"graph 'lin': the loss compares no scores with fed labels"):
        step.predict({"w": np.ones(3)})


BAD_SETTINGS = [
    (lambda: optim.SGD(0.0), r"SGD: lr must be in \(0.0, inf\), got 0.0"),
    (lambda: optim.SGD("0.1"), r"SGD: lr must be a finite real number, got '0.1'"),
    (lambda: optim.SGD(0.1, nesterov=True), r"SGD: nesterov=True needs a momentum > 0"),
    (lambda: optim.SGD(0.1, momentum=1.5), r"SGD: momentum must be in \[0.0, 1.0\), got 1.5"),
    (lambda: optim.Adam(b2=1.0), r"Adam: b2 must be in \[0.0, 1.0\), got 1.0"),
    (lambda: optim.Adam(eps=float("nan")), r"Adam: eps must be a finite real number, got nan"),
    (lambda: optim.AdamW(weight_decay=-1), r"AdamW: weight_decay must be in \[0.0, inf\), got -1"),
    (lambda: optim.RMSprop(clip_norm=0), r"RMSprop: clip_norm must be in \(0.0, inf\), got 0"),
    (lambda: optim.Adam(schedule="cosine"), r"Adam: schedule must be a gc.optim schedule"),
    (lambda: optim.StepDecay(0), r"StepDecay: every must be a positive int, got 0"),
    (lambda: optim.Cosine(10, final=2.0), r"Cosine: final must be in \[0.0, 1.0\], got 2.0"),
    (lambda: optim.Warmup(5, then=optim.Warmup(2)), r"Warmup: then must be a schedule other than Warmup"),
]


@pytest.mark.parametrize("make, message", BAD_SETTINGS, ids=[m for _, m in BAD_SETTINGS])
def test_bad_settings_are_training_errors(make, message):
    with pytest.raises(gc.TrainingError, match=message):
        make()


def test_compile_errors():
    g, loss, params = build()
    with pytest.raises(gc.GraphError, match=r"optimizer must be a gc.optim optimizer .* got str 'adam'"):
        gc.compile_training(loss, params, optimizer="adam")
    g = gc.Graph("free")
    w = g.param("w", (None, 3))
    with pytest.raises(gc.GraphError, match=r"param 'w' has shape \(None, 3\); Adam keeps state"):
        gc.compile_training(gc.sum(w * w), [w], optimizer=optim.Adam())
    g = gc.Graph("names")
    w, s = g.param("w", (3,)), g.input("state", (3,))
    with pytest.raises(gc.GraphError, match=r"input 'state': the name is taken by train_step\(params, state"):
        gc.compile_training(gc.sum(w * s), [w], optimizer=optim.Adam())


@pytest.mark.parametrize("opt", [optim.Adam(lr=0.1), optim.SGD(0.1, schedule=optim.Cosine(5))], ids=str)
def test_node_names_never_clash_with_the_update_names(opt):
    g = gc.Graph("clash")
    x = g.input("x", (None, 3))
    weights = {n: g.param(n, (3,)) for n in ["step", "lr", "t", "LR", "B1", "m_step_", "u_lr_"]}
    total = x
    for w in weights.values():
        total = total * w
    step = gc.compile_training(gc.sum(total), list(weights.values()), optimizer=opt)
    p = {n: np.full(3, 0.9) for n in weights}
    state = step.init_state(p)
    before = gc.compile(gc.sum(total))(x=np.ones((2, 3)), **p)
    for _ in range(3):
        step.train_step(p, state, x=np.ones((2, 3)))
    after = gc.compile(gc.sum(total))(x=np.ones((2, 3)), **p)
    assert after < before


def test_exported_adam_module_trains_without_graphcomp(tmp_path):
    g, loss, params = build()
    step = gc.compile_training(loss, params, optimizer=optim.Adam(lr=0.01, schedule=optim.Cosine(20)))
    step.save(tmp_path / "mlp_adam.py")
    values = feed(batch=32)
    np.savez(tmp_path / "feed.npz", **values)
    script = """
        import sys
        sys.modules['graphcomp'] = None
        import runpy
        import numpy as np
        m = runpy.run_path("mlp_adam.py")
        feed = dict(np.load("feed.npz"))
        params = {k: feed[k].copy() for k in m["PARAMS"]}
        state = m["init_state"](params)
        losses = [float(m["train_step"](params, state, x=feed["x"], y=feed["y"])) for _ in range(20)]
        np.savez("out.npz", losses=losses, **params)
    """
    done = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    p = {n: values[n].copy() for n in PARAM_NAMES}
    state = step.init_state(p)
    losses = [float(step.train_step(p, state, x=values["x"], y=values["y"])) for _ in range(20)]
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["losses"], losses)        # same code, same machine: bit-identical
        for n in PARAM_NAMES:
            np.testing.assert_array_equal(out[n], p[n])
    assert losses[-1] < 0.5 * losses[0]


def test_plain_sgd_seeds_the_chain_rule_with_the_scheduled_lr():
    g, loss, params = build()
    source = gc.compile_training(loss, params, optimizer=optim.SGD(0.1, schedule=optim.StepDecay(100))).source
    body = source[source.index("def train_step"):]
    assert body.index("lr = LR * 0.1 ** (t // 100)") < body.index("_t4 = lr / _t3")
    assert "# SGD: W1 -= lr * dloss/dW1\n    W1 -= step_W1" in body
    momentum = gc.compile_training(loss, params, optimizer=optim.SGD(0.1, momentum=0.9)).source
    assert "step_W1" not in momentum and "buf_W1 += d_W1" in momentum


def test_plain_compile_training_is_unchanged():
    g, loss, params = build()
    step = gc.compile_training(loss, params)
    assert isinstance(step, gc.TrainingStep) and "def train_step(params, x, y, lr):" in step.source


def test_training_doc_excerpt_is_current():
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if b.startswith("LR = 0.001"))
    g, loss, params = build()
    source = gc.compile_training(loss, params, optimizer=optim.Adam(lr=1e-3, schedule=optim.Cosine(1000))).source
    lines = source.splitlines()
    missing = [line for line in block.splitlines() if line.strip() not in ("", "...") and line not in lines]
    assert not missing


@pytest.mark.parametrize("opt", [optim.Adam(lr=0.1), optim.SGD(0.1, momentum=0.9), optim.RMSprop(lr=0.1)], ids=str)
def test_updates_never_write_into_inputs_or_shared_gradients(opt):
    # d(loss)/dw and d(loss)/dv are both x itself: the update must work on copies, never on x
    g = gc.Graph("lin")
    x = g.input("x", (3,))
    w, v, unused = g.param("w", (3,)), g.param("v", (3,)), g.param("unused", (2,))
    step = gc.compile_training(gc.sum(w * x) + gc.sum(v * x) + 0.0 * gc.sum(unused), [w, v, unused], optimizer=opt)
    X = np.array([1.0, 2.0, 3.0])
    p = {"w": np.zeros(3), "v": np.zeros(3), "unused": np.ones(2)}
    state = step.init_state(p)
    for _ in range(3):
        step.train_step(p, state, x=X)
    np.testing.assert_array_equal(X, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(p["w"], p["v"])
    assert (p["w"] < 0).all()
    np.testing.assert_array_equal(p["unused"], 1.0)


@st.composite
def optimizers(draw):
    """Any optimizer with any valid settings, schedule included."""
    lr = draw(st.floats(1e-4, 0.5))
    common = dict(weight_decay=draw(st.sampled_from([0.0, 0.01, 0.3])),
                  clip_norm=draw(st.sampled_from([None, 0.05, 10.0])),
                  schedule=draw(st.sampled_from([optim.Constant(), optim.StepDecay(2, 0.5), optim.Cosine(4, 0.1),
                                                 optim.Warmup(2, optim.Cosine(3))])))
    beta = st.floats(0.0, 0.999)
    kind = draw(st.sampled_from(["sgd", "adam", "adamw", "rmsprop"]))
    if kind == "sgd":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        return optim.SGD(lr, momentum, nesterov=bool(momentum) and draw(st.booleans()), **common)
    if kind == "rmsprop":
        return optim.RMSprop(lr, alpha=draw(beta), eps=draw(st.floats(1e-8, 1e-2)), **common)
    return (optim.Adam if kind == "adam" else optim.AdamW)(lr, b1=draw(beta), b2=draw(beta),
                                                           eps=draw(st.floats(1e-8, 1e-2)), **common)


@settings(max_examples=25)
@given(optimizers())
def test_any_settings_match_the_reference(opt):
    g, loss, params = build(n_in=4, n_hidden=3, n_out=2)
    step = gc.compile_training(loss, params, optimizer=opt)
    values = feed(batch=5, n_in=4, n_hidden=3, n_out=2)
    p = {n: values[n].copy() for n in PARAM_NAMES}
    state = step.init_state(p)
    losses = [float(step.train_step(p, state, x=values["x"], y=values["y"])) for _ in range(4)]
    ref_losses, ref = ref_train(opt, {n: values[n] for n in PARAM_NAMES}, values["x"], values["y"], 4)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-8, atol=1e-10)
    for n in PARAM_NAMES:
        np.testing.assert_allclose(p[n], ref[n], rtol=1e-8, atol=1e-10, err_msg=n)
