"""Pictures: DOT text of forward and gradient graphs, hostile names, rendering with and without Graphviz."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

import graphcomp as gc
from founding import build
from graphcomp import viz

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="the Graphviz program 'dot' is not installed")

HOSTILE = [
    'quote " and \\" escaped quote',
    "back\\slash\\",
    "new\nline\r\n",
    "<record|{braces}>",
    "<b>html</b> & &amp;",
    "bidi \u202eevil\u202c \u2066iso\u2069 \u200b",
    "\\N \\G \\l",
    "x" * 5000,
    "}; digraph injected { a -> b",
]

NODE = re.compile(r'^\s*n(\d+) \[label="((?:[^"\\]|\\.)*)", tooltip="((?:[^"\\]|\\.)*)", [^\n]*\];$')
EDGE = re.compile(r"^\s*n(\d+) -> n(\d+)( \[.*\])?;$")


def founding(gradients=True):
    g, loss, params = build()
    if gradients:
        gc.grad(loss, params)
    return g, loss


def statements(dot):
    """The node and edge statements of DOT text, after checking every line is one we write."""
    lines = dot.splitlines()
    assert lines[0] == "digraph graphcomp {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := NODE.match(line):
            nodes[int(m[1])] = m[2]
        elif m := EDGE.match(line):
            edges.append((int(m[1]), int(m[2]), m[3] or ""))
        else:
            assert re.match(r"^\s*(graph|node|edge) \[.*\];$|^  subgraph cluster_gradients \{$|^  \}$", line), line
    return nodes, edges


def test_forward_graph_has_every_node_and_edge_and_no_gradients():
    g, loss = founding()
    nodes, edges = statements(gc.to_dot(loss))
    names = ["x", "y", "W1", "b1", "W2", "b2", "matmul", "add", "h", "matmul_1", "logits", "log_softmax", "loss"]
    assert [g.nx.nodes[n]["index"] for n in names] == sorted(nodes)
    assert nodes[g.nx.nodes["h"]["index"]] == "h\\nrelu\\n(None, 32) float64"
    assert nodes[g.nx.nodes["y"]["index"]] == "y\\ninput\\n(None,) int64"
    assert nodes[g.nx.nodes["matmul_1"]["index"]] == "matmul_1\\n(None, 10) float64"    # named by its op: once
    assert len(edges) == 12 and all(style == "" for *_, style in edges)
    assert "cluster_gradients" not in gc.to_dot(loss)
    assert "penwidth=2" in gc.to_dot(loss).splitlines()[g.nx.nodes["loss"]["index"] + 4]


def test_shapes_can_be_left_out():
    g, loss = founding(gradients=False)
    nodes, _ = statements(gc.to_dot(loss, shapes=False))
    assert nodes[g.nx.nodes["h"]["index"]] == "h\\nrelu"


def test_gradient_nodes_are_clustered_and_linked_to_what_they_differentiate():
    g, loss = founding()
    dot = gc.to_dot(loss, gradients=True)
    nodes, edges = statements(dot)
    cluster = dot[dot.index("subgraph cluster_gradients"):]
    index = {n: g.nx.nodes[n]["index"] for n in g.nx.nodes}
    for d in ("d_W1", "d_b1", "d_W2", "d_b2", "d_h", "d_add", "d_logits"):
        assert f"  n{index[d]} [" in cluster
    links = {(a, b) for a, b, style in edges if "dashed" in style}
    assert links == {(index[n], index[f"d_{n}"]) for n in ("W1", "b1", "W2", "b2", "h", "add", "logits")}
    assert (index["d_add"], index["d_W1"], "") in edges      # the backward pass's own data flow


def test_a_whole_graph_and_a_list_of_tensors():
    g, loss = founding()
    assert gc.to_dot(g, gradients=True).count(" -> ") > gc.to_dot(g).count(" -> ")
    both = gc.to_dot([loss, g["h"]])
    assert statements(both)[0] == statements(gc.to_dot(loss))[0] and both.count("penwidth=2") == 2
    with pytest.raises(gc.GraphError, match="to_dot: expected a Graph, a Tensor or a list of Tensors, got str"):
        gc.to_dot("loss")
    with pytest.raises(gc.GraphError, match="'z' belongs to graph 'other', not 'mlp'"):
        gc.to_dot([loss, gc.Graph("other").input("z", (1,))])


def test_output_is_deterministic():
    first = gc.to_dot(founding()[1], gradients=True)
    assert all(gc.to_dot(founding()[1], gradients=True) == first for _ in range(3))


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_cannot_break_the_dot(name):
    g = gc.Graph(name)
    x = g.input(name, (2,))
    y = gc.tanh(x, name=name + "!")
    dot = gc.to_dot(gc.sum(y))
    nodes, edges = statements(dot)
    assert len(nodes) == 3 and len(edges) == 2
    label = nodes[0]
    assert "\n" not in label and "\u202e" not in dot and "\u2066" not in dot and "\u200b" not in dot
    assert len(label) < 200 and len(dot) < 6000       # long names are cut in labels and tooltips
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', label)     # every quote and backslash is escaped


@needs_dot
def test_graphviz_parses_hostile_names_into_the_same_structure():
    g = gc.Graph("hostile")
    xs = [g.input(name, (2,)) for name in HOSTILE]
    total = gc.sum(xs[0], name=HOSTILE[1] + "sum")
    for x in xs[1:]:
        total = gc.add(total, gc.sum(x), name=None)
    dot = gc.to_dot(total)
    canonical = subprocess.run(["dot", "-Tcanon"], input=dot.encode(), capture_output=True, check=True)
    parsed = canonical.stdout.decode()
    assert parsed.count(" -> ") == dot.count(" -> ")
    assert len(re.findall(r"^\s*n\d+\s+\[", parsed, re.M)) == len(statements(dot)[0])
    assert "injected" not in re.findall(r"^\s*(\w+)", parsed, re.M)


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_render_writes_the_picture(tmp_path, suffix, magic):
    g, loss = founding()
    path = gc.render(loss, tmp_path / f"mlp{suffix}", gradients=True)
    assert path == str(tmp_path / f"mlp{suffix}")
    data = (tmp_path / f"mlp{suffix}").read_bytes()
    assert data.startswith(magic)
    assert os.listdir(tmp_path) == [f"mlp{suffix}"]      # no temporary left behind


@needs_dot
def test_notebook_display(monkeypatch):
    g, loss = founding()
    assert g._repr_svg_().lstrip().startswith("<?xml") and "d_W1" in g._repr_svg_()
    monkeypatch.setattr(viz, "NOTEBOOK_NODES", g.nx.number_of_nodes() - 1)
    assert g._repr_svg_() is None       # too large to draw while the notebook waits: shown as text


def without_dot(monkeypatch):
    monkeypatch.setattr(viz, "dot_program", lambda: None)


def test_render_without_graphviz_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    without_dot(monkeypatch)
    g, loss = founding()
    target = tmp_path / "mlp.svg"
    with pytest.raises(gc.RenderError, match=r"the Graphviz program 'dot' is not on PATH; install Graphviz "
                       r"\(apt-get install graphviz, brew install graphviz, conda install -c conda-forge "
                       r"graphviz, or https://graphviz.org/download/\)"):
        gc.render(loss, target)
    assert os.listdir(tmp_path) == []
    assert isinstance(gc.RenderError("x"), gc.GraphError)


def test_notebook_display_falls_back_to_text_without_graphviz(monkeypatch):
    without_dot(monkeypatch)
    g, loss = founding()
    assert g._repr_svg_() is None


def test_render_refuses_an_unknown_format(tmp_path):
    g, loss = founding()
    with pytest.raises(gc.RenderError, match=r"cannot tell the picture format from '.*mlp.jpg'; use a path "
                       r"ending in .svg, .png or .pdf"):
        gc.render(loss, tmp_path / "mlp.jpg")


def test_a_failing_graphviz_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(viz, "dot_program", lambda: str(fake))
    target = tmp_path / "mlp.svg"
    target.write_text("old picture")
    g, loss = founding()
    with pytest.raises(gc.RenderError, match=r"Graphviz failed \(exit 3\): Error: syntax error in line 1"):
        gc.render(loss, target)
    assert target.read_text() == "old picture" and sorted(os.listdir(tmp_path)) == ["dot", "mlp.svg"]


def test_the_docs_picture_is_current():
    """docs/make_pictures.py draws the founding network; its DOT files in docs/ are what it gives today."""
    docs = os.path.join(os.path.dirname(__file__), "..", "docs")
    script = os.path.join(docs, "make_pictures.py")
    namespace = {"__name__": "make_pictures", "__file__": script}
    with open(script, encoding="utf-8") as f:
        exec(compile(f.read(), "make_pictures.py", "exec"), namespace)   # noqa: S102 - our own docs script
    for name, dot in namespace["pictures"]().items():
        with open(os.path.join(docs, f"{name}.dot"), encoding="utf-8") as f:
            assert f.read() == dot, f"docs/{name}.dot is stale: run python docs/make_pictures.py"
    page = pathlib.Path(docs, "pictures.md").read_text()
    excerpt = re.search(r"```\n(digraph graphcomp \{\n.*?)```", page, re.S).group(1)
    lines = namespace["pictures"]()["founding"].splitlines()
    assert [line for line in excerpt.splitlines() if line.strip() != "..."] == \
        [line for line in lines if line in excerpt.splitlines()]


ERRORS_MD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "errors.md"
DOCUMENTED = [     # rows of docs/errors.md this issue added: (the code as shown, what stands in for Graphviz)
    ('gc.check_gradients(loss, [W2], {"x": X, "y": Y, **P}, dtype="float16")', None),
    ('gc.check_gradients(loss, [W2], {"x": X, "y": Y, **P}, directions=0)', None),
    ('gc.check_gradients(loss, [W2], {"x": X, "y": Y, **P}, dtype="float32", eps=1e-9)', None),
    ('gc.to_dot("loss")', None),
    ('gc.to_dot([loss, gc.Graph("other").input("z", (1,))])', None),
    ('gc.render(loss, "mlp.jpg")', None),
    ('gc.render(loss, "mlp.svg")', "without Graphviz"),
]


@pytest.mark.parametrize("code, situation", DOCUMENTED, ids=range(len(DOCUMENTED)))
def test_errors_md_shows_the_exact_messages(code, situation, monkeypatch, tmp_path):
    doc = ERRORS_MD.read_text()
    setup = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    shown = f"| `{code}` " + (f"{situation} " if situation else "") + "| `"
    expected = doc[doc.index(shown) + len(shown):].split("` |\n", 1)[0]
    if situation:
        without_dot(monkeypatch)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(setup, namespace)   # noqa: S102 - the docs' own setup
    with pytest.raises(gc.GraphError) as error:
        exec(code, namespace)   # noqa: S102
    assert f"{type(error.value).__name__}: {error.value}" == expected


def test_links_find_their_node_whatever_its_name():
    g = gc.Graph("names")
    w, x = g.param("w", (3,)), g.param("x", (3,))
    odd = g.param("w: /dx: ", (3,))        # its gradient's note reads "dloss/dw: /dx: : ..."
    loss = gc.sum(odd * odd + w * x, name="loss")
    gc.grad(loss, [w, x, odd])
    nodes, edges = statements(gc.to_dot(loss, gradients=True))
    index = {n: g.nx.nodes[n]["index"] for n in g.nx.nodes}
    links = {(a, b) for a, b, style in edges if "dashed" in style}
    assert links == {(index["w: /dx: "], index["d_w: /dx: "])}     # not to w or x (the gradients of
    # w and x are x and w themselves: grad of sum(w * x) needs no node of its own)
