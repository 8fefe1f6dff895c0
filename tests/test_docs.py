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
