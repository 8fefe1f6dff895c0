"""A hostile graph file: every string in it tries to break out of generated code, DOT, LaTeX or the sympy reader.

The file is loaded, compiled (forward, gradients, a training step), run, exported and run again in a fresh
interpreter, drawn as DOT and written as LaTeX; the marker file its payloads would create never appears.
"""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import graphcomp as gc
from graphcomp.io import Limits


def payload(marker):
    """Python that creates ``marker`` if anything ever runs it."""
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def hostile_names(marker):
    code = payload(marker)
    return [
        code,
        f"'); {code}; ('",
        f'"""\n{code}\n"""',
        f"\\\n{code}",
        f"x\n{code}\n#",
        f"a\\'; {code} #",
        "\u0430dd",                                  # Cyrillic a: looks like 'add'
        f"W\u202e{code}\u202c",                       # right-to-left override around code
        f"\u2066{code}\u2069\u200b",                  # bidi isolate and zero-width space
        "lambda", "None", "np", "__builtins__", "def", "import",
        "}}\"; digraph { evil [label=\"" + code,      # DOT break-out
        "\\end{equation} \\input{/etc/passwd} $",     # LaTeX break-out
        "n" * 100_000,                                # 100k characters
    ]


def hostile_file(tmp_path, marker):
    """Build the graph with hostile names, save it, then make its free text (notes, docs, graph name) hostile too."""
    code = payload(marker)
    z = sp.Symbol("z")
    op = gc.elementwise("hostile_op", z * sp.tanh(z), doc=f'"""\n{code}\n"""')
    g = gc.Graph(f'graph"""\n{code}\n"""')
    names = hostile_names(marker)
    x = g.input(names[0], (None, 3))
    weights = [g.param(n, (3,)) for n in names[1:]]
    h = x
    for k, w in enumerate(weights):
        h = op(h * w, name=f"{names[k]} out\n{code}") if k % 3 == 0 else gc.tanh(h + w, name=names[k] + "+")
    odd = np.array([np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324], np.float64)
    h = h + gc.sum(gc.where(gc.equal(g.constant(odd), g.constant(odd)), 0.0, 1.0), name=f"odd {code}")
    h = h * g.constant(np.full((7, 3), 1.0 + 2 ** -52))[:1]       # 21 entries: inline; 1 + eps survives
    h = h + gc.mean(g.constant(np.arange(-500, 500, dtype=np.int64)), name="big") * 0.0     # base64
    loss = gc.mean(h ** 2, name=f"loss\n{code}")
    hess = gc.hessian(gc.sum(gc.tanh(weights[0]) ** 3, name=f"cube {code}"), weights[0])
    grads = gc.grad(loss, weights)
    path = gc.save_graph(g, tmp_path / "hostile.json")
    doc = json.loads(path and (tmp_path / "hostile.json").read_text())
    for node in doc["graph"]["nodes"]:
        if node.get("note"):
            node["note"] = f"{node['note']}\n{code}\n\"\"\"\\"
        body = node["params"].get("body")
        if body:
            body["body"]["doc"] = f'"""\n{code}\n"""'
    (tmp_path / "hostile.json").write_text(json.dumps(doc))
    return tmp_path / "hostile.json", loss.name, [w.name for w in weights], [t.name for t in grads], hess.name


@pytest.mark.usefixtures("forget_user_ops")
def test_a_hostile_graph_file_loads_compiles_renders_and_runs_nothing_it_holds(tmp_path):
    marker = tmp_path / "pwned"
    path, loss_name, weight_names, grad_names, hess_name = hostile_file(tmp_path, marker)
    with pytest.raises(gc.GraphFileError, match=r"field 'name': 100000 characters, more than the limit of 1000"):
        gc.load_graph(path)
    g = gc.load_graph(path, limits=Limits(name_chars=200_000, text_chars=1_000_000))
    loss = g[loss_name]
    outputs = [loss, *(g[n] for n in grad_names), g[hess_name]]
    f = gc.compile(outputs)
    compile(f.source, "generated", "exec")                  # valid Python
    rng = np.random.default_rng(0)
    feed = {n: rng.normal(size=3) for n in weight_names} | {g.inputs[0].name: rng.normal(size=(4, 3))}
    values = f(**feed)
    assert all(np.all(np.isfinite(v)) for v in values)
    step = gc.compile_training(loss, [g[n] for n in weight_names])
    step.train_step({n: feed[n].copy() for n in weight_names}, **{g.inputs[0].name: feed[g.inputs[0].name]}, lr=0.1)
    exported = f.save(tmp_path / "exported.py")
    np.savez(tmp_path / "feed.npz", *[feed[n] for n in f.inputs])
    script = ("import sys, runpy; sys.modules['graphcomp'] = None\nimport numpy as np\n"
              f"m = runpy.run_path({str(exported)!r})\nfeed = np.load({str(tmp_path / 'feed.npz')!r})\n"
              "m['run'](*(feed[f'arr_{k}'] for k in range(len(feed.files))))\n")
    subprocess.run([sys.executable, "-I", "-c", script], check=True, timeout=120)
    dot = gc.to_dot(g, gradients=True)
    for line in dot.splitlines():
        assert "\u202e" not in line and "\u2066" not in line
    outside_strings = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', dot)      # DOT strings closed on their own line
    assert outside_strings.count("digraph") == 1 and outside_strings.count("{") == outside_strings.count("}") == 2
    assert "__import__" not in outside_strings
    formula = gc.derivative(loss, g[weight_names[1]])
    latex = formula.latex()
    assert "\\input{" not in latex and "\\end{equation}" not in latex     # written as \backslash input...
    str(formula)
    assert not marker.exists()


@pytest.mark.parametrize("expr", [
    "__import__('os').system('touch pwned')",
    "Symbol('z').__class__",
    "Function('eval')(Symbol('z'))",
    "Symbol('z') + (lambda: 1)()",
    "Symbol(\"__import__('os')\")",
    "Float('1e9999999999')",
    "Integer(" + "9" * 40 + ")",
    "Pow(Pow(Integer(10), Integer(64)), Integer(64))",
    "exp(" * 2000 + "Symbol('z')" + ")" * 2000,
    "Symbol('z', evaluate=True)",
    "[Symbol('z')][0]",
    "Symbol('z')(Symbol('z'))",
])
def test_hostile_sympy_text_is_refused_without_running_it(expr, tmp_path):
    doc = {"format": "graphcomp-graph", "version": 1,
           "ops": [{"name": "evil", "expr": expr, "symbols": ["z"], "params": {}, "derivatives": None, "doc": ""}],
           "graph": {"name": "g", "dtype": "float64", "nodes": []}}
    with pytest.raises(gc.GraphFileError, match=r"op 'evil' \(ops\[0\]\), field 'expr': "):
        gc.io.loads(json.dumps(doc))
