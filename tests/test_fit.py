"""gc.fit, History, EarlyStopping and checkpoints: reproducibility, resume bit for bit, atomic saves,
validation against the step, and every bad input a clear graphcomp error."""
import numpy as np
import pytest

import graphcomp as gc
from founding import build

PARAMS = ["W1", "b1", "W2", "b2"]


def blobs(n=120, n_in=6, classes=3, seed=0):
    """Separable-ish Gaussian blobs: (x, y)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(0, 2, (classes, n_in))
    return centers[y] + rng.normal(size=(n, n_in)), y


@pytest.fixture
def setup():
    g, loss, params = build(n_in=6, n_hidden=8, n_out=3)
    step = gc.compile_training(loss, params, optimizer=gc.optim.Adam(lr=0.05))
    x, y = blobs()
    return step, gc.init.initialize(step, seed=0), dict(x=x[:90], y=y[:90]), dict(x=x[90:], y=y[90:])


def test_fit_trains_and_records_one_value_per_epoch(setup):
    step, params, data, val = setup
    history = gc.fit(step, params, data, epochs=8, batch_size=16, validation=val, progress=False)
    assert history.epochs == 8 and history.stopped is None
    assert set(history) == {"loss", "accuracy", "errors", "val_loss", "val_accuracy", "val_errors"}
    assert all(len(history[k]) == 8 for k in history)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.8
    assert history["errors"][-1] == round((1 - history["accuracy"][-1]) * 90)
    assert int(history.state["step"]) == 8 * 6          # 90 rows in batches of 16: 6 steps an epoch
    scores = step.predict(params, x=val["x"])
    assert np.mean(scores.argmax(axis=1) == val["y"]) == history["val_accuracy"][-1]


def test_same_seed_same_bits_other_seed_other_order(setup):
    step, params, data, val = setup
    runs = []
    for seed in (3, 3, 4):
        p = {k: v.copy() for k, v in params.items()}
        h = gc.fit(step, p, data, epochs=3, batch_size=16, seed=seed, progress=False)
        runs.append((p, h["loss"]))
    assert all(runs[0][0][k].tobytes() == runs[1][0][k].tobytes() for k in PARAMS)
    assert runs[0][1] == runs[1][1] and runs[0][1] != runs[2][1]


def test_resume_from_a_checkpoint_is_bit_identical(setup, tmp_path):
    step, params, data, val = setup
    whole = {k: v.copy() for k, v in params.items()}
    expected = gc.fit(step, whole, data, epochs=6, batch_size=16, validation=val, seed=5, progress=False)

    first = {k: v.copy() for k, v in params.items()}
    gc.fit(step, first, data, epochs=4, batch_size=16, validation=val, seed=5, progress=False,
           checkpoint=tmp_path / "run.npz")
    p, state, history = gc.load_checkpoint(tmp_path / "run.npz", step)
    assert history.epochs == 4
    resumed = gc.fit(step, p, data, epochs=6, batch_size=16, validation=val, seed=5, progress=False,
                     state=state, history=history)
    for k in PARAMS:
        assert p[k].tobytes() == whole[k].tobytes(), k
    assert dict(resumed) == dict(expected)
    assert state["step"].tobytes() == expected.state["step"].tobytes()


def test_checkpoint_round_trip(setup, tmp_path):
    step, params, data, val = setup
    history = gc.fit(step, params, data, epochs=2, progress=False)
    path = gc.save_checkpoint(tmp_path / "ck.npz", params, history.state, history)
    assert path.endswith("ck.npz") and [f.name for f in tmp_path.iterdir()] == ["ck.npz"]
    p, state, h = gc.load_checkpoint(path, step)
    assert list(p) == PARAMS and list(state) == [n for n, *_ in step.state_specs]
    for k in PARAMS:
        assert p[k].tobytes() == params[k].tobytes() and p[k].flags.writeable
    for k in state:
        assert state[k].tobytes() == history.state[k].tobytes()
    assert dict(h) == dict(history)
    with np.load(path, allow_pickle=False) as raw:        # a plain npz anyone can read
        assert "param:W1" in raw.files and "history:loss" in raw.files


def test_a_plain_sgd_step_checkpoints_without_state(tmp_path):
    g, loss, params = build(n_in=6, n_hidden=8, n_out=3)
    step = gc.compile_training(loss, params)
    p = gc.init.initialize(step, seed=1)
    gc.save_checkpoint(tmp_path / "sgd.npz", p)
    loaded, state, history = gc.load_checkpoint(tmp_path / "sgd.npz", step)
    assert state == {} and len(history) == 0 and loaded["W1"].tobytes() == p["W1"].tobytes()


def test_a_crash_mid_save_keeps_the_previous_checkpoint(setup, tmp_path, monkeypatch):
    step, params, data, val = setup
    path = tmp_path / "run.npz"
    state = step.init_state(params)
    gc.save_checkpoint(path, params, state)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        gc.save_checkpoint(path, {k: v + 1 for k, v in params.items()}, state)
    assert path.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["run.npz"]


def _spoil(path, **changes):
    with np.load(path) as raw:
        arrays = dict(raw)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)


MISMATCHES = [
    (dict(**{"param:W1": None}), r"missing param 'W1'"),
    (dict(**{"param:W9": np.zeros(3)}), r"unexpected param 'W9'"),
    (dict(**{"param:b1": np.zeros(5)}), r"param 'b1' has shape \(5,\), expected \(8,\)"),
    (dict(**{"param:W2": np.zeros((8, 3), np.float32)}), r"param 'W2' has dtype float32, expected float64"),
    (dict(**{"state:W1.m": None, "state:b2.v": np.zeros(4)}),
     r"missing state 'W1.m'; state 'b2.v' has shape \(4,\), expected \(3,\)"),
    (dict(**{"state:step": np.zeros((), np.int32)}), r"state 'step' has dtype int32, expected int64"),
    (dict(graphcomp_checkpoint=None), r"not a graphcomp checkpoint \(no 'graphcomp_checkpoint' entry\)"),
    (dict(graphcomp_checkpoint=np.array(7)), r"checkpoint format 7 is not the format 1"),
    (dict(other=np.zeros(2)), r"unexpected entry 'other'"),
    (dict(**{"param:b2": np.array([object()] * 3)}), r"cannot read it as a graphcomp checkpoint"),
]


@pytest.mark.parametrize("changes, message", MISMATCHES, ids=[m for _, m in MISMATCHES])
def test_a_checkpoint_that_does_not_match_loads_nothing(setup, tmp_path, changes, message):
    step, params, data, val = setup
    path = tmp_path / "run.npz"
    gc.save_checkpoint(path, params, step.init_state(params))
    _spoil(path, **changes)
    with pytest.raises(gc.CheckpointError, match=message):
        gc.load_checkpoint(path, step)


def test_garbage_and_missing_files_are_checkpoint_errors(setup, tmp_path):
    step = setup[0]
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(gc.CheckpointError, match=r"junk.npz: not a graphcomp checkpoint \(not an .npz archive\)"):
        gc.load_checkpoint(tmp_path / "junk.npz", step)
    with pytest.raises(gc.CheckpointError, match=r"cannot read it"):
        gc.load_checkpoint(tmp_path / "missing.npz", step)


def test_save_checkpoint_refuses_what_it_cannot_store(setup, tmp_path):
    step, params, data, val = setup
    with pytest.raises(gc.CheckpointError, match=r"param 'W1' must be a NumPy array of numbers, got list"):
        gc.save_checkpoint(tmp_path / "x.npz", dict(params, W1=params["W1"].tolist()))
    with pytest.raises(gc.TrainingError, match=r"metric 'loss' must hold numbers, got str"):
        gc.save_checkpoint(tmp_path / "x.npz", params, history={"loss": ["low"]})
    assert list(tmp_path.iterdir()) == []


# --- callbacks and early stopping ------------------------------------------------------------------

def test_callbacks_see_every_epoch_and_can_stop(setup):
    step, params, data, val = setup
    seen = []

    def stop_at_three(epoch, history, params, state):
        seen.append((epoch, history.epochs, int(state["step"])))
        return epoch == 3

    history = gc.fit(step, params, data, epochs=10, batch_size=30, callbacks=[stop_at_three], progress=False)
    assert seen == [(1, 1, 3), (2, 2, 6), (3, 3, 9)]
    assert history.epochs == 3 and "stopped training after epoch 3" in history.stopped


def test_early_stopping_restores_the_best_epoch(setup):
    step, params, data, val = setup
    # a learning rate this large makes val_loss bounce: early stopping must catch it
    step = gc.compile_training(*build(n_in=6, n_hidden=8, n_out=3)[1:], optimizer=gc.optim.Adam(lr=0.3))
    stopper = gc.EarlyStopping(patience=2)
    best = {}

    def remember(epoch, history, params, state):
        if history["val_loss"][-1] == min(history["val_loss"]):
            best.update({k: params[k].copy() for k in PARAMS})

    history = gc.fit(step, params, data, epochs=40, batch_size=8, validation=val, callbacks=[remember, stopper],
                     progress=False)
    assert history.epochs < 40 and history.stopped.startswith("early stopping: val_loss did not improve for 2")
    assert history["val_loss"].index(min(history["val_loss"])) + 1 == stopper.best_epoch
    for k in PARAMS:
        np.testing.assert_array_equal(params[k], best[k])


def test_early_stopping_needs_its_metric(setup):
    step, params, data, val = setup
    with pytest.raises(gc.TrainingError, match=r"the history has no 'val_loss' .* give fit a validation set"):
        gc.fit(step, params, data, epochs=2, callbacks=[gc.EarlyStopping()], progress=False)


def test_validation_split_holds_out_the_last_rows(setup):
    step, params, data, val = setup
    history = gc.fit(step, params, data, epochs=1, validation_split=0.2, progress=False,
                     callbacks=[lambda e, h, p, s: None])
    assert int(history.state["step"]) == 3        # 72 training rows, batch 32
    assert "val_loss" in history


def test_the_progress_bar_stays_quiet_off_a_terminal(setup, capsys):
    step, params, data, val = setup
    gc.fit(step, params, data, epochs=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_history_plot(setup, tmp_path):
    pytest.importorskip("matplotlib")
    step, params, data, val = setup
    history = gc.fit(step, params, data, epochs=2, validation=val, progress=False)
    fig = history.plot(tmp_path / "curve.png", title="blobs")
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    with pytest.raises(gc.TrainingError, match="nothing to plot"):
        gc.History().plot()


# --- bad input ------------------------------------------------------------------------------------

def _with(d, **changes):
    return {**d, **changes}


BAD_DATA = [
    ("labels too large", lambda d: _with(d, y=np.where(np.arange(90) == 40, 3, d["y"])),
     gc.FeedError, r"feed 'y': 3 at flat index 40 is not a class index of 3 classes \(it must be in \[0, 3\)\)"),
    ("negative label", lambda d: _with(d, y=np.where(np.arange(90) == 7, -1, d["y"])),
     gc.FeedError, r"feed 'y': -1 at flat index 7 is not a class index"),
    ("nan", lambda d: _with(d, x=np.where(np.arange(90)[:, None] == 17, np.nan, d["x"])),
     gc.FeedError, r"fit: data 'x' holds nan in row 17 \(batch \d+ of epoch 1\); fit needs finite data"),
    ("inf", lambda d: _with(d, x=np.where(np.arange(90)[:, None] == 89, -np.inf, d["x"])),
     gc.FeedError, r"fit: data 'x' holds -inf in row 89 \(batch \d+ of epoch 1\)"),
    ("rows", lambda d: _with(d, y=d["y"][:80]),
     gc.FeedError, r"fit: data 'x' has 90 rows but 'y' has 80; every input needs one row per example"),
    ("missing input", lambda d: {"x": d["x"]}, gc.FeedError, r"missing feed for input 'y'"),
    ("unknown input", lambda d: _with(d, z=d["x"]), gc.FeedError, r"unknown feed 'z'"),
    ("float labels", lambda d: _with(d, y=d["y"].astype(float)),
     gc.FeedError, r"feed 'y': dtype float64, expected int64"),
    ("wrong width", lambda d: _with(d, x=d["x"][:, :5]),
     gc.FeedError, r"feed 'x': shape \(90, 5\), expected \(None, 6\)"),
    ("scalar", lambda d: _with(d, y=3), gc.FeedError, r"fit: data 'y' is a scalar"),
    ("empty", lambda d: {k: v[:0] for k, v in d.items()}, gc.FeedError, r"fit: data has no rows"),
    ("not a dict", lambda d: list(d.values()), gc.FeedError, r"fit: data must be a dict of input name -> array"),
]


@pytest.mark.parametrize("what, spoil, error, message", BAD_DATA, ids=[b[0] for b in BAD_DATA])
def test_bad_data_is_refused_before_any_step(setup, what, spoil, error, message):
    step, params, data, val = setup
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(error, match=message):
        gc.fit(step, params, spoil(data), epochs=1, progress=False)
    for k in PARAMS:
        np.testing.assert_array_equal(params[k], before[k])


def test_bad_validation_data_is_named_as_such(setup):
    step, params, data, val = setup
    with pytest.raises(gc.FeedError, match=r"fit: validation 'x' holds nan in row 2; fit needs finite data"):
        gc.fit(step, params, data, validation=_with(val, x=np.where(np.arange(30)[:, None] == 2, np.nan, val["x"])),
               progress=False)


BAD_PARAMS = [
    ("missing", lambda p: {k: v for k, v in p.items() if k != "b1"}, r"missing param for param 'b1'"),
    ("list", lambda p: _with(p, W2=p["W2"].tolist()),
     r"param 'W2' must be a NumPy array \(float64\), since train_step"),
    ("float32", lambda p: _with(p, W1=p["W1"].astype(np.float32)), r"param 'W1': dtype float32, expected float64"),
    ("not a dict", lambda p: list(p.values()), r"params must be a dict of name -> array"),
]


@pytest.mark.parametrize("what, spoil, message", BAD_PARAMS, ids=[b[0] for b in BAD_PARAMS])
def test_bad_params_are_refused(setup, what, spoil, message):
    step, params, data, val = setup
    with pytest.raises(gc.FeedError, match=message):
        gc.fit(step, spoil(params), data, epochs=1, progress=False)


BAD_ARGS = [
    (dict(epochs=-1), r"fit: epochs must be an int >= 0, got -1"),
    (dict(batch_size=0), r"fit: batch_size must be an int >= 1, got 0"),
    (dict(batch_size=2.5), r"fit: batch_size must be an int >= 1, got 2.5"),
    (dict(validation_split=1.0), r"fit: validation_split must be a fraction in \(0, 1\), got 1.0"),
    (dict(validation_split=0.001), r"leaves 0 for validation"),
    (dict(validation_split=0.2, validation={}), r"give validation or validation_split, not both"),
    (dict(metrics=["f1"]), r"fit: unknown metric 'f1'"),
    (dict(history={"loss": []}), r"history must be a gc.History"),
]


@pytest.mark.parametrize("kwargs, message", BAD_ARGS, ids=[m for _, m in BAD_ARGS])
def test_bad_arguments(setup, kwargs, message):
    step, params, data, val = setup
    with pytest.raises(gc.TrainingError, match=message):
        gc.fit(step, params, data, progress=False, **kwargs)


def test_fit_needs_an_optimizer_and_labels_for_accuracy():
    g, loss, params = build(n_in=6, n_hidden=8, n_out=3)
    with pytest.raises(gc.TrainingError, match=r"fit needs a step compiled with an optimizer"):
        gc.fit(gc.compile_training(loss, params), {}, {})
    g = gc.Graph("reg")
    x, w = g.input("x", (None, 3)), g.param("w", (3,))
    step = gc.compile_training(gc.mean((x @ w) * (x @ w)), [w], optimizer=gc.optim.SGD(0.1))
    p = {"w": np.ones(3)}
    history = gc.fit(step, p, {"x": np.ones((4, 3))}, epochs=2, progress=False)
    assert set(history) == {"loss"}
    with pytest.raises(gc.TrainingError, match=r"'accuracy' needs a classification loss"):
        gc.fit(step, p, {"x": np.ones((4, 3))}, metrics=["accuracy"], progress=False)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverging_loss_stops_with_params_at_the_last_good_epoch(tmp_path):
    g, loss, params = build(n_in=6, n_hidden=8, n_out=3)
    # 12 steps an epoch: two good epochs at lr 0.05, then lr 5e198 blows up in epoch 3
    step = gc.compile_training(loss, params, optimizer=gc.optim.SGD(0.05, schedule=gc.optim.StepDecay(24, 1e200)))
    x, y = blobs()
    p = gc.init.initialize(step, seed=0)
    good = {}

    def keep(epoch, history, params, state):
        good.update({k: params[k].copy() for k in PARAMS})

    message = (r"the loss became (nan|inf) at epoch 3, step \d+ of 12; params and state are back at their values "
               r"after epoch 2 \(as in the checkpoint\)")
    with pytest.raises(gc.DivergenceError, match=message) as caught:
        gc.fit(step, p, dict(x=x, y=y), epochs=5, batch_size=10, callbacks=[keep], progress=False,
               checkpoint=tmp_path / "run.npz")
    assert caught.value.epoch == 3 and caught.value.history.epochs == 2
    saved, state, history = gc.load_checkpoint(tmp_path / "run.npz", step)
    assert history.epochs == 2 and int(state["step"]) == 24
    for k in PARAMS:
        np.testing.assert_array_equal(p[k], good[k])
        np.testing.assert_array_equal(saved[k], good[k])
