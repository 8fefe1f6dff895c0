"""The generated code the README shows is what graphcomp generates today (a golden source test)."""
import pathlib
import re

import graphcomp as gc
from founding import build

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_backward_pass_is_current():
    g, loss, params = build()
    source = gc.compile_training(loss, params).source
    generated = source[source.index("def backward"):source.index("def train_step")].strip()
    shown = re.search(r"```python\n(def backward.*?)```", README.read_text(), re.S).group(1).strip()
    assert shown == generated


def test_codegen_doc_excerpts_are_current():
    g, loss, params = build()
    source = gc.compile_training(loss, params).source.splitlines()
    doc = (README.parent / "docs" / "codegen.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.strip() not in ("", "...")]
    assert len(lines) > 10
    missing = [line for line in lines if line not in source]
    assert not missing


def test_reading_gradients_page_shows_what_graphcomp_prints():
    g, loss, (W1, b1, W2, b2) = build()
    doc = (README.parent / "docs" / "reading-gradients.md").read_text()
    d = gc.derivative(loss, W1)
    shown = [str(gc.derivative(loss, W2)), str(d), str(d.expand(1)), str(d.expand()), str(d.chain()), d.latex(),
             str(gc.derivative(loss, b2)).splitlines()[0], str(gc.derivative(loss, b1)).splitlines()[0]]
    missing = [text for text in shown if text not in doc]
    assert not missing
    source = gc.compile_training(loss, [W1, b1, W2, b2]).source.splitlines()
    block = re.search(r"## The generated code says the same.*?```python\n(.*?)```", doc, re.S).group(1)
    assert [line for line in block.splitlines() if line.strip() != "..." and line not in source] == []


def test_symbolic_doc_excerpt_is_current():
    import sympy as sp

    from graphcomp.op import OPS
    before = dict(OPS)
    try:
        z = sp.Symbol("z")
        swish = gc.elementwise("swish", z / (1 + sp.exp(-z)))
        g = gc.Graph("mlp")
        x = g.input("x", (None, 4))
        W1, b1 = g.param("W1", (4, 3)), g.param("b1", (3,))
        h = swish(x @ W1 + b1, name="h")
        loss = gc.sum(h, name="loss")
        source = gc.compile_training(loss, [W1, b1]).source.splitlines()
    finally:
        OPS.clear()
        OPS.update(before)
    doc = (README.parent / "docs" / "symbolic.md").read_text()
    block = re.search(r"```python\n(def _sigmoid.*?)```", doc, re.S).group(1)
    assert [line for line in block.splitlines() if line.strip() not in ("", "...") and line not in source] == []


def test_cnn_rnn_doc_excerpts_are_current():
    """The generated scan code docs/cnn_rnn.md shows is what its example graph generates today."""
    doc = (README.parent / "docs" / "cnn_rnn.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    example = next(b for b in blocks if b.startswith('g = gc.Graph("rnn")'))
    env = {"gc": gc}
    exec(example, env)   # noqa: S102 - the doc's own example
    source = gc.compile([env["loss"], env["dW_hh"]]).source.splitlines()
    shown = [line for b in blocks if "def _" in b or "_scan(" in b or "<-" in b for line in b.splitlines()
             if line.strip()]
    assert len(shown) > 20
    assert [line for line in shown if line not in source] == []
