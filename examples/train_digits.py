"""Train a small MLP on scikit-learn's bundled digits with graphcomp-generated code.

The network is 64 pixels -> linear(32) -> relu -> linear(10) -> log_softmax ->
mean negative log-likelihood, trained with minibatch SGD by the training step
graphcomp compiles. The script then

1. prints the test accuracy per epoch and fails (exit status 1) below 95 %,
2. checks the compiled gradients against central finite differences,
3. writes the generated training module to a file (``--out``), and
4. runs one ``train_step`` of that file in a fresh, isolated interpreter that
   cannot import graphcomp, and compares the result with the in-process step.

Run it from anywhere: ``python examples/train_digits.py [--out PATH]``.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import graphcomp as gc

SEED = 0
TEST_FRACTION = 0.2
HIDDEN = 32
CLASSES = 10
EPOCHS = 25
BATCH = 32
LR = 0.1
MIN_ACCURACY = 0.95
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "mlp_train.py"

# Runs in the isolated child: loads the exported module with graphcomp made
# unimportable, does one train_step and saves the loss and updated params.
CHILD_SCRIPT = """
import sys
sys.modules["graphcomp"] = None  # any `import graphcomp` now raises ImportError
import importlib.util
import numpy as np

module_path, data_path, result_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_mlp", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = np.load(data_path)
params = {name: data[name].copy() for name in module.PARAMS}
loss = module.train_step(params, x=data["x"], y=data["y"], lr=float(data["lr"]))
np.savez(result_path, loss=loss, **params)
"""


def build_network(n_features):
    """Declare the MLP; return (loss, logits, params) tensors."""
    g = gc.Graph("mlp")
    x = g.input("x", (None, n_features))
    y = g.input("y", (None,), dtype="int64")
    W1 = g.param("W1", (n_features, HIDDEN))
    b1 = g.param("b1", (HIDDEN,))
    W2 = g.param("W2", (HIDDEN, CLASSES))
    b2 = g.param("b2", (CLASSES,))
    h = gc.relu(x @ W1 + b1, name="h")
    logits = gc.add(h @ W2, b2, name="logits")
    loss = gc.nll_loss(gc.log_softmax(logits, axis=-1), y, name="loss")
    return loss, logits, [W1, b1, W2, b2]


def load_data(rng):
    """Split digits 80/20 with a seeded permutation and standardize on the train split."""
    digits = load_digits()
    X, y = digits.data.astype(np.float64), digits.target.astype(np.int64)
    order = rng.permutation(len(X))
    n_test = int(round(TEST_FRACTION * len(X)))
    test, train = order[:n_test], order[n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0  # NOTE: some border pixels are always 0 in the train split
    X = (X - mean) / std
    return X[train], y[train], X[test], y[test]


def init_params(rng, n_features):
    """He-normal for the relu layer, Glorot-uniform for the output layer, zero biases."""
    glorot = np.sqrt(6.0 / (HIDDEN + CLASSES))
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / n_features), (n_features, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "W2": rng.uniform(-glorot, glorot, (HIDDEN, CLASSES)),
        "b2": np.zeros(CLASSES),
    }


def accuracy(predict, params, X, y):
    """Fraction of rows of X whose arg-max logit is the label."""
    return float(np.mean(np.argmax(predict(x=X, **params), axis=1) == y))


def train(step, predict, params, data, rng):
    """Run minibatch SGD for EPOCHS epochs; print loss and test accuracy per epoch."""
    X_train, y_train, X_test, y_test = data
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(X_train))
        total = 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            loss = step.train_step(params, x=X_train[batch], y=y_train[batch], lr=LR)
            total += float(loss) * len(batch)
        test_acc = accuracy(predict, params, X_test, y_test)
        print(f"epoch {epoch:2d}  loss {total / len(order):.4f}  test accuracy {test_acc:.2%}")


def run_exported(step, path, params, x, y, lr=LR):
    """Run one train_step of the saved module in an isolated interpreter.

    Returns True when its loss and updated params match the in-process step.
    """
    expected = {name: value.copy() for name, value in params.items()}
    expected_loss = step.train_step(expected, x=x, y=y, lr=lr)
    with tempfile.TemporaryDirectory() as tmp:
        data_path, result_path = Path(tmp) / "data.npz", Path(tmp) / "result.npz"
        np.savez(data_path, x=x, y=y, lr=lr, **params)
        subprocess.run(
            [sys.executable, "-I", "-c", CHILD_SCRIPT, str(path), str(data_path), str(result_path)],
            check=True,
            cwd=tmp,
        )
        with np.load(result_path) as result:
            got = {name: result[name] for name in result.files}
    print(f"exported module: loss {float(got['loss']):.6f} (in-process {float(expected_loss):.6f})")
    return np.allclose(got["loss"], expected_loss) and all(
        np.allclose(got[name], expected[name]) for name in expected
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"where to write the training module (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)

    data = load_data(rng)
    X_train, y_train, X_test, y_test = data
    print(f"digits: {len(X_train)} train / {len(X_test)} test samples, {X_train.shape[1]} features")

    started = time.perf_counter()
    loss, logits, param_tensors = build_network(X_train.shape[1])
    step = gc.compile_training(loss, params=param_tensors)
    predict = gc.compile(logits)
    print(f"compiled training step and predictor in {time.perf_counter() - started:.2f} s")

    params = init_params(rng, X_train.shape[1])
    started = time.perf_counter()
    train(step, predict, params, data, rng)
    print(f"trained {EPOCHS} epochs in {time.perf_counter() - started:.2f} s")

    test_acc = accuracy(predict, params, X_test, y_test)
    print(f"final test accuracy: {test_acc:.2%}")
    if test_acc < MIN_ACCURACY:
        sys.exit(f"FAIL: test accuracy {test_acc:.2%} is below {MIN_ACCURACY:.0%}")

    feed = dict(params, x=X_train[:8], y=y_train[:8])
    report = gc.check_gradients(loss, param_tensors, feed)
    print(report)
    if not report.ok:
        sys.exit("FAIL: compiled gradients disagree with finite differences")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    step.save(args.out)
    print(f"wrote the generated training module to {args.out}")
    if not run_exported(step, args.out, params, X_train[:BATCH], y_train[:BATCH]):
        sys.exit(f"FAIL: {args.out} run alone disagrees with the in-process train_step")
    print("exported module runs without graphcomp and matches the in-process step")


if __name__ == "__main__":
    main()
