"""Fuzzing graph files: random valid graphs with free dims survive the file and keep correct gradients; random
mutations of a file and random feeds to a loaded graph raise graphcomp errors, never anything else.

The ``ci`` profile (the default) runs a few derandomized examples; a long hunt is
``.venv/bin/python -m pytest tests/test_io_fuzz.py --hypothesis-profile=fuzz`` (docs/graph-file.md).
"""
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import founding
import graphcomp as gc
from graphcomp.io import loads
from test_properties import UNARY

SHAPELESS = sorted(k for k in UNARY if k != "flatten-unflatten")     # (reshape to x.shape needs static dims)
TEXT = gc.io._dumps(gc.io._document(founding.build()[0]))


@st.composite
def free_dim_graphs(draw):
    """A chain over a batch of free size: (graph source of its loss, loss, params, feed)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    n_in = draw(st.integers(1, 3))
    g = gc.Graph("free")
    batch = draw(st.sampled_from([None, "batch"]))
    x = g.input("x", (batch, n_in))
    params, feed = [], {"x": rng.uniform(-1.5, 1.5, (draw(st.integers(1, 4)), n_in))}
    h, width = x, n_in

    def param(shape):
        p = g.param(f"p{len(params)}", shape)
        params.append(p)
        feed[p.name] = rng.uniform(-1.0, 1.0, shape)
        return p

    for kind in draw(st.lists(st.sampled_from(["unary", "bias", "matmul", "softmax", "reduce", "scale"]),
                              min_size=1, max_size=6)):
        if kind == "unary":
            h = UNARY[draw(st.sampled_from(SHAPELESS))][0](h)
        elif kind == "bias":
            h = h + param((width,))
        elif kind == "matmul":
            width = draw(st.integers(1, 3))
            h = h @ param((h.shape[-1], width))
        elif kind == "softmax":
            h = gc.log_softmax(h, axis=-1) if draw(st.booleans()) else gc.softmax(h, axis=-1)
        elif kind == "reduce":
            h = gc.sum(h, axis=-1, keepdims=True) if draw(st.booleans()) else gc.mean(h, axis=1, keepdims=True)
            width = 1
        else:
            h = h * param(())
    if not params:
        h = h * param((width,))
    loss = gc.mean(h * h, name="loss")
    return loss, params, feed


@given(free_dim_graphs())
def test_free_dim_graphs_keep_their_gradients_through_a_file(case):
    loss, params, feed = case
    grads = gc.grad(loss, params)
    loaded, _ = loads(gc.io._dumps(gc.io._document(loss.graph)))
    outputs = [loaded["loss"], *(loaded[t.name] for t in grads)]
    assert gc.compile(outputs).source == gc.compile([loss, *grads]).source
    report = gc.check_gradients(loaded["loss"], [loaded[p.name] for p in params], feed)
    assert report.ok, f"\n{report}"


@given(st.lists(st.tuples(st.integers(0, len(TEXT) - 1), st.integers(0, 3), st.text(max_size=3)), min_size=1,
                max_size=4))
def test_mutated_files_raise_graph_file_errors_only(edits):
    text = TEXT
    for at, cut, insert in edits:
        at %= len(text) or 1
        text = text[:at] + insert + text[at + cut:]
    try:
        loads(text)
    except gc.GraphFileError:
        pass


@given(st.dictionaries(st.sampled_from(["x", "y", "W1", "b1", "W2", "b2", "z"]),
                       st.tuples(st.lists(st.integers(0, 4), max_size=3),
                                 st.sampled_from(["float64", "float32", "int64", "bool", "complex128", "uint8"])),
                       min_size=0, max_size=7))
def test_random_feeds_to_a_loaded_graph_raise_graphcomp_errors_only(spec):
    g, _ = loads(TEXT)
    f = gc.compile(g["loss"])
    feed = {name: np.ones(shape, dtype) for name, (shape, dtype) in spec.items()}
    try:
        f(**feed)
    except gc.GraphError:
        pass


def test_a_valid_mutation_still_round_trips():
    doc = json.loads(TEXT)
    doc["graph"]["nodes"][0]["name"] = "features"
    for node in doc["graph"]["nodes"]:
        node["args"] = ["features" if a == "x" else a for a in node["args"]]
    g, _ = loads(json.dumps(doc))
    assert "features" in g and g["features"].shape == ("?0", 64)


def rich_documents():
    """The CNN, the LSTM scan and a Hessian's loop bodies with their gradients: (document, outputs)."""
    from test_io import cnn, jacobian_and_hessian, lstm
    found = []
    for example in (cnn, lstm, jacobian_and_hessian):
        loss, params = example()
        grads = gc.grad(gc.sum(loss), params)
        found.append((json.loads(gc.io._dumps(gc.io._document(loss.graph))), [loss.name, *(t.name for t in grads)]))
    return found


RICH = rich_documents()
JUNK = st.sampled_from([None, True, False, 0, 1, 2, -1, 1.5, "x", "same", "sum", "stack", [], {}, [1, 2], [0],
                        [[1, 1], [1, 1]], "?0", 2 ** 40, {"float": "nan"}, -0.0, [2, 2], [-1], "float64", "int64"])


def places(value, setter):
    """Setters for a param value and each part of it (not inside arrays and loop bodies)."""
    yield setter
    if isinstance(value, list):
        for k, v in enumerate(value):
            yield from places(v, lambda new, value=value, k=k: value.__setitem__(k, new))
    elif isinstance(value, dict) and not {"array", "body", "scalar"} & set(value):
        for k, v in value.items():
            yield from places(v, lambda new, value=value, k=k: value.__setitem__(k, new))


@given(st.integers(0, len(RICH) - 1), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), JUNK)
def test_junk_params_are_refused_or_compile_and_run_with_graphcomp_errors_only(which, at, part, junk):
    doc, outputs = RICH[which]
    doc = json.loads(json.dumps(doc))
    nodes = [n for n in doc["graph"]["nodes"] if n["params"] and n["op"] not in ("input", "param")]
    params = nodes[at % len(nodes)]["params"]
    setters = [s for k, v in params.items() for s in places(v, lambda new, k=k: params.__setitem__(k, new))]
    setters[part % len(setters)](junk)
    try:
        g, _ = loads(json.dumps(doc))
        f = gc.compile([g[o] for o in outputs])
        f(**{k: np.ones(tuple(d if isinstance(d, int) else 2 for d in g[k].shape), g[k].dtype) for k in f.inputs})
    except gc.GraphError:
        pass
