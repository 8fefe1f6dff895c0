"""Train a small convolutional network on scikit-learn's 8x8 digits with graphcomp-generated code.

The network is 1x8x8 image -> conv 3x3 (8 channels, "same") -> relu -> max pool 2
-> conv 3x3 (16 channels, "same") -> relu -> max pool 2 -> flatten (64) ->
linear(10) -> cross-entropy, trained with minibatch SGD (the step shrunk for the last 5 epochs) by the training step
graphcomp compiles (forward, backward through conv and pooling, and update).
On the same 80/20 split as examples/train_digits.py it reaches a higher test
accuracy than that MLP (about 97-98 %). The script then

1. prints the test accuracy per epoch and fails (exit status 1) below 97 %,
2. checks the compiled gradients against central finite differences,
3. writes the generated training module to a file (``--out``), and
4. runs one ``train_step`` of that file in a fresh, isolated interpreter that
   cannot import graphcomp, and compares the result with the in-process step.

Run it from anywhere: ``python examples/train_cnn_digits.py [--out PATH]``.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from train_digits import load_data

import graphcomp as gc

SEED = 0
CLASSES = 10
EPOCHS = 15
BATCH = 32
LR = 0.05
MIN_ACCURACY = 0.97
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "cnn_train.py"



# Run by run_exported in a fresh interpreter in which graphcomp cannot be imported.
CHILD_SCRIPT = """
import sys
sys.modules["graphcomp"] = None  # any `import graphcomp` now raises ImportError
import importlib.util
import numpy as np

module_path, data_path, result_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_cnn", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = np.load(data_path)
params = {name: data[name].copy() for name in module.PARAMS}
loss = module.train_step(params, x=data["x"], y=data["y"], lr=float(data["lr"]))
np.savez(result_path, loss=loss, **params)
"""


def run_exported(step, path, params, x, y, lr):
    """Run one train_step of the saved module in an isolated interpreter.

    Returns True when its loss and updated params match the in-process step.
    """
    expected = {name: value.copy() for name, value in params.items()}
    expected_loss = step.train_step(expected, x=x, y=y, lr=lr)
    with tempfile.TemporaryDirectory() as tmp:
        data_path, result_path = Path(tmp) / "data.npz", Path(tmp) / "result.npz"
        np.savez(data_path, x=x, y=y, lr=lr, **params)
        subprocess.run([sys.executable, "-I", "-c", CHILD_SCRIPT, str(path), str(data_path), str(result_path)],
                       check=True, cwd=tmp)
        with np.load(result_path) as result:
            got = {name: result[name] for name in result.files}
    print(f"exported module: loss {float(got['loss']):.6f} (in-process {float(expected_loss):.6f})")
    return np.allclose(got["loss"], expected_loss) and all(np.allclose(got[n], expected[n]) for n in expected)


def build_network():
    """Declare the CNN; return (loss, logits, params) tensors."""
    g = gc.Graph("cnn")
    x = g.input("x", (None, 64))
    y = g.input("y", (None,), dtype="int64")
    K1, c1 = g.param("K1", (8, 1, 3, 3)), g.param("c1", (8,))
    K2, c2 = g.param("K2", (16, 8, 3, 3)), g.param("c2", (16,))
    W, b = g.param("W", (64, CLASSES)), g.param("b", (CLASSES,))
    image = gc.reshape(x, (-1, 1, 8, 8), name="image")
    h1 = gc.max_pool2d(gc.relu(gc.conv2d(image, K1, c1, padding="same")), 2, name="h1")     # (n, 8, 4, 4)
    h2 = gc.max_pool2d(gc.relu(gc.conv2d(h1, K2, c2, padding="same")), 2, name="h2")        # (n, 16, 2, 2)
    logits = gc.add(gc.flatten(h2) @ W, b, name="logits")
    loss = gc.cross_entropy(logits, y, name="loss")
    return loss, logits, [K1, c1, K2, c2, W, b]


def init_params(rng):
    """He-normal kernels and weights (fan-in of each unit), zero biases."""
    def he(shape, fan_in):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    return {"K1": he((8, 1, 3, 3), 9), "c1": np.zeros(8), "K2": he((16, 8, 3, 3), 72), "c2": np.zeros(16),
            "W": he((64, CLASSES), 64), "b": np.zeros(CLASSES)}


def accuracy(predict, params, X, y):
    return float(np.mean(np.argmax(predict(x=X, **params), axis=1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the training module (default: {DEFAULT_OUT})")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    X_train, y_train, X_test, y_test = load_data(rng)
    print(f"digits: {len(X_train)} train / {len(X_test)} test images of 8x8")

    started = time.perf_counter()
    loss, logits, param_tensors = build_network()
    step = gc.compile_training(loss, params=param_tensors)
    predict = gc.compile(logits)
    print(f"compiled training step and predictor in {time.perf_counter() - started:.2f} s")

    params = init_params(rng)
    started = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(X_train))
        total = 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            lr = LR if epoch <= EPOCHS - 5 else LR / 5      # a smaller step for the last epochs settles the weights
            total += float(step.train_step(params, x=X_train[batch], y=y_train[batch], lr=lr)) * len(batch)
        print(f"epoch {epoch:2d}  loss {total / len(order):.4f}  test accuracy "
              f"{accuracy(predict, params, X_test, y_test):.2%}")
    print(f"trained {EPOCHS} epochs in {time.perf_counter() - started:.2f} s")

    test_acc = accuracy(predict, params, X_test, y_test)
    print(f"final test accuracy: {test_acc:.2%}")
    if test_acc < MIN_ACCURACY:
        sys.exit(f"FAIL: test accuracy {test_acc:.2%} is below {MIN_ACCURACY:.0%}")

    report = gc.check_gradients(loss, param_tensors, dict(params, x=X_train[:8], y=y_train[:8]))
    print(report)
    if not report.ok:
        sys.exit("FAIL: compiled gradients disagree with finite differences")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    step.save(args.out)
    print(f"wrote the generated training module to {args.out}")
    if not run_exported(step, args.out, params, X_train[:BATCH], y_train[:BATCH], LR):
        sys.exit(f"FAIL: {args.out} run alone disagrees with the in-process train_step")
    print("exported module runs without graphcomp and matches the in-process step")


if __name__ == "__main__":
    main()
