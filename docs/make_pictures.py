"""Draw the founding network of the README and its gradient graph into docs/ (run from anywhere).

    python docs/make_pictures.py

writes founding.dot and founding_gradients.dot (their text is tested to be
current by tests/test_viz.py) and, with Graphviz installed, the .svg
pictures docs/pictures.md shows.
"""
import pathlib
import shutil

import graphcomp as gc

DOCS = pathlib.Path(__file__).resolve().parent


def founding():
    """The README's network: x (None, 64) -> relu(x @ W1 + b1) -> logits = h @ W2 + b2 -> cross-entropy."""
    g = gc.Graph("mlp")
    x = g.input("x", (None, 64))
    y = g.input("y", (None,), dtype="int64")
    W1, b1 = g.param("W1", (64, 32)), g.param("b1", (32,))
    W2, b2 = g.param("W2", (32, 10)), g.param("b2", (10,))
    h = gc.relu(x @ W1 + b1, name="h")
    logits = gc.add(h @ W2, b2, name="logits")
    loss = gc.nll_loss(gc.log_softmax(logits, axis=-1), y, name="loss")
    return loss, [W1, b1, W2, b2]


def pictures():
    """{file stem: DOT text}: the forward graph, then the same graph with its gradients."""
    loss, params = founding()
    forward = gc.to_dot(loss)
    gc.grad(loss, params)
    return {"founding": forward, "founding_gradients": gc.to_dot(loss, gradients=True)}


def main():
    for stem, dot in pictures().items():
        (DOCS / f"{stem}.dot").write_text(dot, encoding="utf-8")
        print(f"wrote docs/{stem}.dot")
    if shutil.which("dot") is None:
        print("Graphviz is not installed: the .svg pictures were not redrawn")
        return
    loss, params = founding()
    gc.render(loss, DOCS / "founding.svg")
    gc.grad(loss, params)
    gc.render(loss, DOCS / "founding_gradients.svg", gradients=True)
    print("wrote docs/founding.svg, docs/founding_gradients.svg")


if __name__ == "__main__":
    main()
