"""Graph files: every example graph and every op of the op table survives save/load with byte-identical generated
code; the published JSON Schema accepts what save_graph writes; bad files raise GraphFileError naming the field."""
import importlib.util
import json
import pathlib
import re

import jsonschema
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import founding
import graphcomp as gc
from graphcomp.io import Limits, loads
from graphcomp.op import OPS
from test_ops import CASES, NO_GRADIENT_CASES, build, scalar_loss
from test_properties import random_graphs

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "graph-file.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def round_trip(graph, tmp_path, name="g.json", schema=True):
    path = gc.save_graph(graph, tmp_path / name)
    if schema:
        VALIDATOR.validate(json.loads(pathlib.Path(path).read_text()))
    return gc.load_graph(path)


def same_source(outputs, tmp_path, schema=True):
    """The outputs compile to the same module before and after a round trip; returns the loaded graph."""
    graph = outputs[0].graph
    loaded = round_trip(graph, tmp_path, schema=schema)
    before = gc.compile(list(outputs)).source
    after = gc.compile([loaded[t.name] for t in outputs]).source
    assert after == before
    for n, attrs in graph.nx.nodes(data=True):
        got = loaded.nx.nodes[n]
        for key in ("op", "args", "shape", "dtype", "note", "temp", "named", "weak", "outputs"):
            assert got.get(key) == attrs.get(key), (n, key)
    return loaded


# ---- round trips ------------------------------------------------------------------------------


def test_founding_network_with_gradients_round_trips(tmp_path):
    g, loss, params = founding.build()
    loaded = same_source([loss, *gc.grad(loss, params)], tmp_path)
    f = gc.compile(loaded["loss"])
    assert f(**founding.feed()) == pytest.approx(gc.compile(loss)(**founding.feed()))
    assert gc.to_dot(loaded) == gc.to_dot(g)


@pytest.mark.parametrize("case", CASES + NO_GRADIENT_CASES, ids=str)
def test_every_op_of_the_table_round_trips(case, tmp_path):
    g, out, wrt, feed, rng = build(case)
    outputs = [out]
    if case in CASES:
        loss = scalar_loss(g, out, rng)
        outputs = [loss, *gc.grad(loss, wrt)]
    same_source(outputs, tmp_path, schema=False)      # (the schema is checked on the examples: it is slow)


def cnn():
    """The network of examples/train_cnn_digits.py (which needs scikit-learn to import)."""
    g = gc.Graph("cnn")
    x = g.input("x", (None, 64))
    y = g.input("y", (None,), dtype="int64")
    K1, c1 = g.param("K1", (8, 1, 3, 3)), g.param("c1", (8,))
    K2, c2 = g.param("K2", (16, 8, 3, 3)), g.param("c2", (16,))
    W, b = g.param("W", (64, 10)), g.param("b", (10,))
    image = gc.reshape(x, (-1, 1, 8, 8), name="image")
    h1 = gc.max_pool2d(gc.relu(gc.conv2d(image, K1, c1, padding="same")), 2, name="h1")
    h2 = gc.max_pool2d(gc.relu(gc.conv2d(h1, K2, c2, padding="same")), 2, name="h2")
    logits = gc.add(gc.flatten(h2) @ W, b, name="logits")
    return gc.cross_entropy(logits, y, name="loss"), [K1, c1, K2, c2, W, b]


def lstm():
    spec = importlib.util.spec_from_file_location("train_lstm_adding", ROOT / "examples" / "train_lstm_adding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loss, _, params = module.build_network()
    return loss, params


def jacobian_and_hessian():
    g = gc.Graph("derivatives")
    w = g.param("w", (3,))
    loss = gc.sum(gc.tanh(w) * w, name="loss")
    return gc.hessian(loss, w), [w]


def sympy_ops():
    z, a, b = sp.symbols("z a b")
    swish = gc.elementwise("file_swish", z / (1 + sp.exp(-z)))
    pair = gc.elementwise("file_pair", a * sp.exp(b) + b ** 2, a, b, derivatives=[sp.exp(b), a * sp.exp(b) + 2 * b])
    soft = gc.elementwise("file_soft", 1 / (1 + sp.exp(-sp.Symbol("k") * z)), z, params={"k": 2.0})
    g = gc.Graph("sympy")
    x, w = g.param("x", (3,)), g.param("w", (3,))
    loss = gc.sum(swish(pair(x, w)) + soft(x, k=3.0) + gc.gelu_tanh(w) + gc.elu(x), name="loss")
    return loss, [x, w]


@pytest.mark.usefixtures("forget_user_ops")
@pytest.mark.parametrize("example", [cnn, lstm, jacobian_and_hessian, sympy_ops])
def test_example_graphs_with_gradients_round_trip(example, tmp_path):
    loss, params = example()
    outputs = [loss, *gc.grad(gc.sum(loss), params)]
    same_source(outputs, tmp_path)


@pytest.mark.usefixtures("forget_user_ops")
def test_user_ops_are_defined_again_in_a_fresh_registry(tmp_path):
    loss, params = sympy_ops()
    grads = gc.grad(loss, params)
    path = gc.save_graph(loss.graph, tmp_path / "g.json")
    before = gc.compile([loss, *grads]).source
    removed = {n: OPS.pop(n) for n in list(OPS) if n.startswith(("file_", "∂file_"))}
    try:
        g = gc.load_graph(path)
        assert gc.compile([g["loss"], *(g[t.name] for t in grads)]).source == before
    finally:
        OPS.update(removed)


@pytest.mark.usefixtures("forget_user_ops")
def test_a_different_definition_under_the_same_name_is_refused(tmp_path):
    z = sp.Symbol("z")
    f = gc.elementwise("file_clash", sp.sin(z) * z)
    g = gc.Graph("clash")
    f(g.param("x", (2,)), name="y")
    path = gc.save_graph(g, tmp_path / "g.json")
    gc.elementwise("file_clash", sp.cos(z) * z)
    with pytest.raises(gc.GraphFileError, match=r"op 'file_clash' \(ops\[0\]\): an element-wise op 'file_clash' "
                                                r"with another definition is registered"):
        gc.load_graph(path)
    assert OPS["file_clash"].expr == sp.cos(z) * z


@given(random_graphs())
def test_random_graphs_round_trip(case):
    loss, params, feed, _ = case
    outputs = [loss, *gc.grad(loss, params)]
    graph = loss.graph
    text = gc.io._dumps(gc.io._document(graph))
    VALIDATOR.validate(json.loads(text))
    loaded, _ = loads(text)
    assert gc.compile([loaded[t.name] for t in outputs]).source == gc.compile(outputs).source


def test_values_travel_beside_the_file(tmp_path):
    g, loss, params = founding.build()
    values = {k: v for k, v in founding.feed().items() if k in {"W1", "b1", "W2", "b2"}}
    gc.save_graph(g, tmp_path / "mlp.json", values=values)
    assert (tmp_path / "mlp.npz").exists()
    loaded, got = gc.load_graph(tmp_path / "mlp.json", with_values=True)
    assert sorted(got) == sorted(values) and all(np.array_equal(got[k], values[k]) for k in values)
    assert json.loads((tmp_path / "mlp.json").read_text())["values"] == "mlp.npz"


def test_constants_inline_base64_and_non_finite(tmp_path):
    g = gc.Graph("constants", dtype="float32")
    x = g.param("x", (100,))
    big = np.linspace(-1, 1, 100, dtype=np.float32)
    odd = np.array([np.nan, np.inf, -np.inf, -0.0], np.float64)
    y = gc.sum(x * g.constant(big) + g.constant(np.float32(2.5)) + float("inf") * 0.0, name="y")
    z = gc.sum(g.constant(odd) + g.constant(np.arange(6, dtype=np.uint8).reshape(2, 3)).sum(), name="z")
    loaded = same_source([y, z], tmp_path)
    assert np.array_equal(loaded["constant"].value, big)
    doc = json.loads((tmp_path / "g.json").read_text())
    tags = [next(iter(p["value"])) for n in doc["graph"]["nodes"] if n["op"] == "constant"
            for p in [n["params"]] if isinstance(p["value"], dict)]
    assert "array" in tags and "float" in tags


VALUES = [None, True, 0, -3, 2.5, -0.0, float("inf"), "same", (1, (2, None), "x"), [1, [2.0]], np.arange(3),
          np.zeros((0, 2), np.float32), np.array([np.nan, 1.0]), np.arange(200, dtype=np.int16), np.float32(1.5),
          np.int64(-7), np.dtype("uint8")]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_each_param_type_is_read_back_as_itself(value):
    got = gc.io._Reader(Limits(), "t").value(json.loads(json.dumps(gc.io._encode(value, "v"))), "v", 0)
    assert type(got) is type(value)
    if isinstance(value, (np.ndarray, np.generic)):
        assert got.dtype == value.dtype and np.array_equal(got, value, equal_nan=True)
    else:
        assert repr(got) == repr(value)


def test_loaded_graphs_take_new_free_dims_and_gradients(tmp_path):
    g, loss, params = founding.build()
    loaded = round_trip(g, tmp_path)
    extra = loaded.input("z", (None,))
    assert extra.shape[0] not in {d for n in loaded.nx for d in loaded.nx.nodes[n]["shape"] if n != "z"}
    grads = gc.grad(loaded["loss"], [loaded["W1"]])
    assert grads[0].shape == (64, 32)


# ---- bad files ----------------------------------------------------------------------------------


def document():
    g, loss, params = founding.build()
    return json.loads(gc.io._dumps(gc.io._document(g)))


def edit(change):
    doc = document()
    change(doc)
    return doc


def node(doc, name):
    return next(n for n in doc["graph"]["nodes"] if n["name"] == name)


BAD = [  # (what, change, message); messages name the node and field
    ("newer version", lambda d: d.update(version=2),
     r"field 'version': format version 2 is newer than this graphcomp reads \(up to 1\)"),
    ("other format", lambda d: d.update(format="onnx"), r"field 'format': expected 'graphcomp-graph'"),
    ("unknown field", lambda d: d.update(extra=1), r"the document: unknown field 'extra'"),
    ("unknown op", lambda d: node(d, "h").update(op="os.system"),
     r"node 'h' \(nodes\[8\]\), field 'op': unknown op 'os.system'"),
    ("forward reference", lambda d: node(d, "h").update(args=["logits"]),
     r"node 'h' \(nodes\[8\]\), field 'args\[0\]': 'logits' is not an earlier node"),
    ("self reference", lambda d: node(d, "h").update(args=["h"]), r"field 'args\[0\]': 'h' is not an earlier node"),
    ("duplicate name", lambda d: node(d, "h").update(name="add"),
     r"node 'add' \(nodes\[8\]\), field 'name': the name is used by an earlier node"),
    ("wrong shape", lambda d: node(d, "h").update(shape=["?0", 33]),
     r"node 'h' \(nodes\[8\]\), field 'shape': the file says \(\?0, 33\), but relu infers \(\?0, 32\)"),
    ("wrong dtype", lambda d: node(d, "h").update(dtype="float32"),
     r"field 'dtype': the file says float32, but relu infers float64"),
    ("bad dtype", lambda d: node(d, "x").update(dtype="object; rm -rf"), r"node 'x' \(nodes\[0\]\), field 'dtype'"),
    ("arity", lambda d: node(d, "h").update(args=["add", "add"]), r"node 'h' \(nodes\[8\]\): OpError: .*takes 1"),
    ("bad param", lambda d: node(d, "log_softmax").update(params={"axis": "rows"}),
     r"node 'log_softmax' \(nodes\[11\]\)"),
    ("unknown param tag", lambda d: node(d, "log_softmax").update(params={"axis": {"pickle": "x"}}),
     r"field 'params.axis': expected a number, string, null, array or an object with one of the keys"),
    ("bad float tag", lambda d: node(d, "log_softmax").update(params={"axis": {"float": "1e400"}}),
     r"field 'params.axis.float': expected 'nan', 'inf' or '-inf'"),
    ("bad dim", lambda d: node(d, "x").update(shape=["a b", 64]),
     r"node 'x' \(nodes\[0\]\), field 'shape\[0\]': free dim 'a b' is neither a name"),
    ("huge dim", lambda d: node(d, "W1").update(shape=[2 ** 50, 32]), r"field 'shape\[0\]': dim .* is outside"),
    ("bool dim", lambda d: node(d, "W1").update(shape=[True, 32]), r"field 'shape\[0\]': expected an int"),
    ("not a list", lambda d: d["graph"].update(nodes={}), r"graph, field 'nodes': expected a JSON array"),
    ("node not object", lambda d: d["graph"]["nodes"].append(3), r"nodes\[13\]: expected a JSON object, got a number"),
    ("missing field", lambda d: node(d, "h").pop("params"), r"node 'h' \(nodes\[8\]\): missing field 'params'"),
    ("note type", lambda d: node(d, "h").update(note=5), r"field 'note': expected a string or null"),
    ("total_of", lambda d: node(d, "h").update(total_of="nowhere"), r"field 'total_of': 'nowhere' is not a node"),
    ("constant dtype", lambda d: d["graph"]["nodes"].append(
        {"name": "c", "op": "constant", "args": [], "params": {"value": 1.5, "dtype": "int64"}, "shape": [],
         "dtype": "int64"}), r"node 'c' \(nodes\[13\]\): DTypeError: .*1.5 is of dtype float64"),
    ("constant text", lambda d: d["graph"]["nodes"].append(
        {"name": "c", "op": "constant", "args": [], "params": {"value": "__import__('os')", "dtype": "float64"},
         "shape": [], "dtype": "float64"}), r"node 'c' \(nodes\[13\]\): DTypeError: .*must be a Python number"),
    ("array data", lambda d: d["graph"]["nodes"].append(
        {"name": "c", "op": "constant", "args": [], "params": {"value": {"array": {
            "dtype": "int8", "shape": [2], "data": [1, 300]}}, "dtype": "int8"}, "shape": [2], "dtype": "int8"}),
     r"field 'params.value.array.data\[1\]': 300 is not a int8 value"),
    ("array size", lambda d: d["graph"]["nodes"].append(
        {"name": "c", "op": "constant", "args": [], "params": {"value": {"array": {
            "dtype": "float64", "shape": [3], "base64": "AAAA"}}, "dtype": "float64"}, "shape": [3],
         "dtype": "float64"}), r"field 'params.value.array.base64': 3 bytes for shape \[3\]"),
    ("values path", lambda d: d.update(values="../../etc/passwd.npz"), r"field 'values': expected the plain name"),
    ("sympy eval", lambda d: d.update(ops=[{"name": "evil", "expr": "__import__('os').system('x')", "symbols": ["z"],
                                           "params": {}, "derivatives": None, "doc": ""}]),
     r"op 'evil' \(ops\[0\]\), field 'expr': .*is not allowed"),
    ("sympy name", lambda d: d.update(ops=[{"name": "evil", "expr": "exec(Symbol('z'))", "symbols": ["z"],
                                           "params": {}, "derivatives": None, "doc": ""}]),
     r"field 'expr': call of 'exec' is not allowed"),
    ("sympy power", lambda d: d.update(ops=[{"name": "evil", "expr": "Pow(Integer(10), Integer(1000000))",
                                            "symbols": [], "params": {}, "derivatives": None, "doc": ""}]),
     r"field 'expr': a power of a number must be a number of at most 30 digits to at most 64"),
    ("derivative of", lambda d: d.update(ops=[{"name": "x'", "derivative_of": "relu", "arg": 0}]),
     r"field 'derivative_of': 'relu' is not an element-wise op defined by sympy"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_files_name_the_field_at_fault(what, change, message, tmp_path):
    before = dict(OPS)
    text = json.dumps(edit(change))
    with pytest.raises(gc.GraphFileError, match=message):
        loads(text, directory=str(tmp_path), with_values=True)
    assert dict(OPS) == before          # a failed load registers nothing


@pytest.mark.parametrize("what, change, message", [b for b in BAD if b[0] not in {
    "unknown op", "forward reference", "self reference", "duplicate name", "wrong shape", "wrong dtype", "arity",
    "bad param", "total_of", "constant dtype", "constant text", "array data", "array size", "values path", "sympy eval", "sympy name",
    "sympy power", "derivative of", "bad dim", "huge dim", "bad float tag"}], ids=lambda b: str(b)[:20])
def test_the_schema_refuses_what_the_structure_check_refuses(what, change, message):
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(edit(change))


def test_the_published_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("text, message", [
    (b"\xff\xfe", r"not UTF-8 text"),
    ("{", r"not JSON: "),
    ("[" * 100_000 + "]" * 100_000, r"not JSON"),
    ('{"format": NaN}', r"NaN is not JSON"),
    ("1" * 5000, r"not JSON this reader accepts"),
    ('"\\ud800"', r"the document: expected a JSON object"),
])
def test_text_that_is_not_a_graph_file(text, message):
    with pytest.raises(gc.GraphFileError, match=message):
        loads(text)


@pytest.mark.parametrize("limits, change, message", [
    (Limits(nodes=5), None, r"graph: more than the limit of 5 nodes"),
    (Limits(name_chars=5), None, r"node 'matmul' \(nodes\[6\]\), field 'name': 6 characters, more than the limit of 5"),
    (Limits(ndim=1), None, r"node 'x' \(nodes\[0\]\), field 'params.shape'|field 'shape': 2 entries"),
    (Limits(constant_bytes=8), lambda d: d["graph"]["nodes"].append(
        {"name": "c", "op": "constant", "args": [], "params": {"value": {"array": {
            "dtype": "float64", "shape": [2], "data": [1.0, 2.0]}}, "dtype": "float64"}, "shape": [2],
         "dtype": "float64"}), r"array constants take more than the limit of 8 bytes"),
    (Limits(text_chars=10), lambda d: node(d, "h").update(note="x" * 11), r"field 'note': 11 characters"),
], ids=["nodes", "name", "ndim", "constant bytes", "text"])
def test_size_limits(limits, change, message):
    doc = edit(change or (lambda d: None))
    with pytest.raises(gc.GraphFileError, match=message):
        loads(json.dumps(doc), limits=limits)


def test_unsaveable_params_are_named(tmp_path):
    g = gc.Graph("odd")
    x = g.param("x", (2,))
    g.nx.nodes[x.name]["params"] = {"shape": (2,), "dtype": "float64", "callback": print}
    with pytest.raises(gc.GraphFileError, match=r"node 'x', param 'callback': a graph file cannot hold a "
                                                r"builtins.builtin_function_or_method"):
        gc.save_graph(g, tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()


def test_values_must_be_params(tmp_path):
    g, loss, params = founding.build()
    with pytest.raises(gc.GraphFileError, match=r"'W3' is not a param of graph 'mlp'"):
        gc.save_graph(g, tmp_path / "g.json", values={"W3": np.zeros(3)})
    with pytest.raises(gc.GraphFileError, match=r"'W1' has shape \(3,\), expected \(64, 32\)"):
        gc.save_graph(g, tmp_path / "g.json", values={"W1": np.zeros(3)})


def test_a_missing_or_pickled_values_file_is_refused(tmp_path):
    g, loss, params = founding.build()
    gc.save_graph(g, tmp_path / "mlp.json", values={"b1": np.zeros(32)})
    (tmp_path / "mlp.npz").unlink()
    with pytest.raises(gc.GraphFileError, match=r"field 'values': cannot read 'mlp.npz'"):
        gc.load_graph(tmp_path / "mlp.json", with_values=True)
    np.savez(tmp_path / "mlp.npz", b1=np.array([object()], dtype=object))
    with pytest.raises(gc.GraphFileError, match=r"field 'values': 'mlp.npz' is not an .npz of plain arrays"):
        gc.load_graph(tmp_path / "mlp.json", with_values=True)


def test_a_missing_file_is_a_graph_file_error(tmp_path):
    with pytest.raises(gc.GraphFileError, match=r"graph file 'nope.json': cannot read it"):
        gc.load_graph(tmp_path / "nope.json")


def test_graph_file_error_is_a_graph_error():
    assert issubclass(gc.GraphFileError, gc.GraphError) and issubclass(gc.GraphFileError, ValueError)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                max_size=3), max_leaves=8),
       st.sampled_from(["h", "x", "log_softmax", "loss"]), st.sampled_from(["params", "args", "shape", "op", "name"]))
def test_random_malformed_fields_raise_graph_file_errors(junk, name, field):
    doc = document()
    node(doc, name)[field] = junk
    try:
        loads(json.dumps(doc, allow_nan=True).replace("NaN", '{"float": "nan"}')
              .replace("-Infinity", '{"float": "-inf"}').replace("Infinity", '{"float": "inf"}'))
    except gc.GraphFileError:
        pass


ERRORS_MD = ROOT / "docs" / "errors.md"


def documented_rows():
    section = ERRORS_MD.read_text().split("\n## Graph files\n", 1)[1]
    return re.findall(r"^\| `(.*?)` \| `(.*?)` \|$", section, re.M)


def test_errors_md_has_graph_file_rows():
    assert len(documented_rows()) >= 10


@pytest.mark.parametrize("code, expected", documented_rows(), ids=range(len(documented_rows())))
def test_errors_md_shows_the_exact_graph_file_messages(code, expected, monkeypatch, tmp_path):
    doc = ERRORS_MD.read_text()
    setup = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    helper = re.search(r"```python\n(.*?)```", doc.split("\n## Graph files\n", 1)[1], re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(setup + helper, namespace)   # noqa: S102 - the docs' own setup
    with pytest.raises(gc.GraphError) as error:
        exec(code, namespace)   # noqa: S102
    assert f"{type(error.value).__name__}: {error.value}" == expected


def test_graph_file_md_excerpt_is_current(tmp_path):
    g, loss, params = founding.build()
    gc.grad(loss, params)
    gc.save_graph(g, tmp_path / "mlp.json")
    lines = set((tmp_path / "mlp.json").read_text().splitlines())
    page = (ROOT / "docs" / "graph-file.md").read_text()
    excerpt = re.search(r"```json\n(.*?)```", page, re.S).group(1)
    nodes = [line.rstrip(",") for line in excerpt.splitlines() if line.startswith('  {"name"')]
    assert len(nodes) == 5 and all(n in lines or n + "," in lines for n in nodes)


@pytest.mark.parametrize("change, message", [
    (lambda b: b["inputs"].pop(), r"field 'params.body.body.inputs': the body's leaf .* is not among its inputs"),
    (lambda b: b["inputs"].append(b["output"]), r"field 'params.body.body.inputs\[\d+\]': .* is not a leaf of the body"),
    (lambda b: b["inputs"].append(b["inputs"][0]), r"is not a leaf of the body listed once"),
    (lambda b: b.update(output="nowhere"), r"field 'params.body.body.output': 'nowhere' is not a node of the body"),
    (lambda b: b["graph"].update(dtype="int8"), r"field 'params.body.body.graph.dtype': expected a dtype name"),
], ids=["missing input", "computed input", "input twice", "output", "dtype"])
def test_bad_loop_bodies_are_named(change, message):
    hess, _ = jacobian_and_hessian()
    doc = json.loads(gc.io._dumps(gc.io._document(hess.graph)))
    node = next(n for n in doc["graph"]["nodes"] if n["op"] == "map")
    change(node["params"]["body"]["body"])
    with pytest.raises(gc.GraphFileError, match=message):
        loads(json.dumps(doc))
