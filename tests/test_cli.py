"""The graphcomp command line: each command in-process through main(argv), exit codes (0 ok, 1 failure, 2 usage),
errors on stderr without tracebacks, and the installed console script in a subprocess."""
import pathlib
import runpy
import subprocess
import sys

import numpy as np
import pytest

import graphcomp as gc
from graphcomp import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    assert cli.main(["demo", str(directory)]) == 0
    return directory


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_demo_writes_a_graph_values_data_and_a_feed(demo):
    g, values = gc.load_graph(demo / "mlp.json", with_values=True)
    assert sorted(values) == ["W1", "W2", "b1", "b2"] and g["loss"].shape == ()
    assert set(np.load(demo / "data.npz").files) == {"x", "y"}


def test_compile_writes_a_module_that_computes_the_outputs(demo, tmp_path, capsys):
    code, out, err = run(capsys, "compile", demo / "mlp.json", "--outputs", "loss", "-o", tmp_path / "f.py")
    assert code == 0 and "wrote" in err
    module = runpy.run_path(str(tmp_path / "f.py"))
    g, values = gc.load_graph(demo / "mlp.json", with_values=True)
    feed = {**values, **{k: v for k, v in np.load(demo / "feed.npz").items()}}
    expected = gc.compile(g["loss"])(**feed)
    assert module["run"](*(feed[n] for n, *_ in module["INPUTS"]))[0] == pytest.approx(expected)


def test_grad_prints_the_module_to_stdout_without_o(demo, capsys):
    code, out, err = run(capsys, "grad", demo / "mlp.json", "--loss", "loss", "--wrt", "W1,b1")
    assert code == 0 and "def run(" in out and "d_W1" in out and "d_b1" in out


def test_check_passes_and_prints_the_table(demo, capsys):
    code, out, err = run(capsys, "check", demo / "mlp.json", "--loss", "loss", "--wrt", "W1,b1",
                         "--feed", demo / "feed.npz")
    assert code == 0 and "all gradients match" in out


@pytest.mark.usefixtures("forget_user_ops")
def test_check_exits_1_on_a_mismatch(demo, tmp_path, capsys):
    # a sympy op whose given derivative is wrong: the file is fine, the gradient is not
    import sympy as sp
    z = sp.Symbol("z")
    wrong = gc.elementwise("cli_wrong", sp.sin(z), derivatives=[sp.sin(z)])
    g = gc.Graph("wrong")
    w = g.param("w", (3,))
    gc.sum(wrong(w), name="loss")
    gc.save_graph(g, tmp_path / "wrong.json", values={"w": np.array([0.1, 0.5, 1.0])})
    np.savez(tmp_path / "empty.npz")
    code, out, err = run(capsys, "check", tmp_path / "wrong.json", "--loss", "loss", "--feed", tmp_path / "empty.npz")
    assert code == 1 and "GRADIENT MISMATCH" in out and "gradient mismatch" in err


def test_inspect_prints_the_formula_and_latex(demo, capsys):
    code, out, err = run(capsys, "inspect", demo / "mlp.json", "--loss", "loss", "--wrt", "W1")
    assert code == 0 and out.startswith("∂loss/∂W1 = ")
    code, out, err = run(capsys, "inspect", demo / "mlp.json", "--loss", "loss", "--wrt", "W1", "--latex")
    assert code == 0 and out.startswith("\\begin{aligned}")


def test_render_writes_dot_without_graphviz(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, out, err = run(capsys, "render", demo / "mlp.json", "-o", tmp_path / "g.dot", "--loss", "loss")
    assert code == 0 and (tmp_path / "g.dot").read_text().startswith("digraph")
    code, out, err = run(capsys, "render", demo / "mlp.json", "-o", tmp_path / "g.svg")
    assert code == 1 and "Graphviz program 'dot' is not on PATH" in err and "-o " in err
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(gc.viz.dot_program() is None, reason="needs Graphviz")
def test_render_draws_svg_with_graphviz(demo, tmp_path, capsys):
    code, out, err = run(capsys, "render", demo / "mlp.json", "-o", tmp_path / "g.svg", "--loss", "loss")
    assert code == 0 and "<svg" in (tmp_path / "g.svg").read_text()


def test_train_lowers_the_loss_and_writes_params(demo, tmp_path, capsys):
    code, out, err = run(capsys, "train", demo / "mlp.json", "--loss", "loss", "--data", demo / "data.npz",
                         "--epochs", 2, "--lr", 0.01, "-o", tmp_path / "params.npz")
    assert code == 0, err
    losses = [float(line.split("loss ")[1].split(",")[0]) for line in err.splitlines() if line.startswith("epoch")]
    assert len(losses) == 2 and losses[1] < losses[0]
    trained = np.load(tmp_path / "params.npz")
    assert set(trained.files) == {"W1", "b1", "W2", "b2"}
    code, out, err = run(capsys, "train", demo / "mlp.json", "--loss", "loss", "--data", demo / "data.npz",
                         "--epochs", 1, "--optimizer", "sgd", "--lr", 0.1, "--init", tmp_path / "params.npz",
                         "-o", tmp_path / "again.npz")
    assert code == 0 and float(err.split("loss ")[1].split(",")[0]) < losses[1] * 1.5


FAILURES = [  # (argv after the demo file, exit code, stderr)
    (["compile", "{d}/nope.json", "--outputs", "loss"], 1, "GraphFileError: graph file 'nope.json': cannot read it"),
    (["compile", "{d}/mlp.json", "--outputs", "lossy"], 2, "--outputs: graph 'mlp' has no node 'lossy'; did you "
                                                         "mean 'loss'?"),
    (["compile", "{d}/mlp.json"], 2, "the following arguments are required: --outputs"),
    (["grad", "{d}/mlp.json", "--loss", "h", "--wrt", "W1"], 1, "GradientError"),
    (["check", "{d}/mlp.json", "--loss", "loss", "--feed", "{d}/none.npz"], 1, "--feed: cannot read"),
    (["check", "{d}/mlp.json", "--loss", "loss", "--feed", "{d}/mlp.json"], 1, "is not an .npz of plain arrays"),
    (["train", "{d}/mlp.json", "--loss", "loss", "--data", "{d}/feed.npz", "--lr", "-1", "-o", "{d}/p.npz"], 2,
     "--lr: "),
    (["train", "{d}/mlp.json", "--loss", "loss", "--data", "{d}/feed.npz", "--epochs", "x", "-o", "{d}/p.npz"], 2,
     "argument --epochs: invalid int value"),
    (["compile", "{d}/mlp.json", "--outputs", "loss", "-o", "{d}/no/such/dir/f.py"], 1, "cannot write"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv, code, message", FAILURES, ids=[" ".join(f[0])[:40] for f in FAILURES])
def test_failures_exit_with_a_message_and_no_traceback(demo, argv, code, message, capsys):
    got, out, err = run(capsys, *(a.format(d=demo) for a in argv))
    assert got == code and message in err


def test_debug_shows_the_traceback(demo):
    with pytest.raises(gc.GraphFileError):
        cli.main(["--debug", "compile", str(demo / "nope.json"), "--outputs", "loss"])
    with pytest.raises(gc.GraphFileError):
        cli.main(["compile", "--debug", str(demo / "nope.json"), "--outputs", "loss"])


@pytest.mark.parametrize("command", ["compile", "grad", "check", "inspect", "render", "train", "demo"])
def test_each_command_has_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: graphcomp {command}") and "--debug" in out


def test_the_installed_script_and_python_m(demo):
    script = pathlib.Path(sys.executable).parent / "graphcomp"
    done = subprocess.run([str(script), "grad", str(demo / "mlp.json"), "--loss", "loss", "--wrt", "W9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "has no node 'W9'" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "graphcomp", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"graphcomp {gc.__version__}"
