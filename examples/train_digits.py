"""Train an MLP on scikit-learn's bundled digits with graphcomp-generated code and Adam.

The network is 64 pixels -> linear(128) -> relu -> linear(10) -> log_softmax ->
mean negative log-likelihood. ``compile_training`` writes its forward pass,
backward pass and Adam update (with a cosine learning-rate schedule) as one
NumPy module, and ``gc.fit`` trains it in seeded minibatches with a progress
bar. The script then

1. prints the test accuracy and fails (exit status 1) below 97 %,
2. checks the compiled gradients against central finite differences,
3. writes the learning curves (PNG), a checkpoint and the generated training
   module to ``--out`` (default ``examples/out/``), and
4. trains with that module in a fresh, isolated interpreter that cannot
   import graphcomp, and checks it gives the same params, bit for bit, as the
   same steps run in this process.

The test set is held out from training and only measured (it is fit's
``validation`` set, which nothing is tuned or stopped on).

Run it from anywhere: ``python examples/train_digits.py [--out DIR] [--curves PNG]``.
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
HIDDEN = 128
CLASSES = 10
EPOCHS = 30
BATCH = 32
LR = 1e-3
MIN_ACCURACY = 0.97
DEFAULT_OUT = Path(__file__).resolve().parent / "out"

# Runs in the isolated child: loads the exported module with graphcomp made
# unimportable, trains two epochs with its init_state and train_step in a plain
# NumPy loop, and saves the params.
CHILD_SCRIPT = """
import sys
sys.modules["graphcomp"] = None  # any `import graphcomp` now raises ImportError
import importlib.util
import numpy as np

module_path, data_path, result_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_digits", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = np.load(data_path)
params = {name: data[name].copy() for name in module.PARAMS}
state = module.init_state(params)
x, y, batch = data["x"], data["y"], int(data["batch"])
for epoch in range(2):
    for start in range(0, len(x), batch):
        loss = module.train_step(params, state, x[start:start + batch], y[start:start + batch])
scores = module.predict(*(params[name] for name in module.PARAMS), data["x_test"])
test_accuracy = np.mean(np.argmax(scores, axis=1) == data["y_test"])
print(f"  child: 2 epochs with the exported module alone: last loss {loss:.4f}, test accuracy {test_accuracy:.2%}")
np.savez(result_path, **params)
"""


def build_network(n_features):
    """Declare the MLP; return (loss, params) tensors."""
    g = gc.Graph("digits")
    x = g.input("x", (None, n_features))
    y = g.input("y", (None,), dtype="int64")
    W1 = g.param("W1", (n_features, HIDDEN))
    b1 = g.param("b1", (HIDDEN,))
    W2 = g.param("W2", (HIDDEN, CLASSES))
    b2 = g.param("b2", (CLASSES,))
    h = gc.relu(x @ W1 + b1, name="h")
    logits = gc.add(h @ W2, b2, name="logits")
    loss = gc.nll_loss(gc.log_softmax(logits, axis=-1), y, name="loss")
    return loss, [W1, b1, W2, b2]


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


def run_exported(step, path, params, X, y, X_test, y_test):
    """Train two epochs with the saved module in an isolated interpreter.

    Returns True when its params equal, bit for bit, those of the same steps
    run in this process with ``step.train_step``.
    """
    expected = {name: value.copy() for name, value in params.items()}
    state = step.init_state(expected)
    for _ in range(2):
        for start in range(0, len(X), BATCH):
            step.train_step(expected, state, x=X[start:start + BATCH], y=y[start:start + BATCH])
    with tempfile.TemporaryDirectory() as tmp:
        data_path, result_path = Path(tmp) / "data.npz", Path(tmp) / "result.npz"
        np.savez(data_path, x=X, y=y, x_test=X_test, y_test=y_test, batch=BATCH, **params)
        subprocess.run([sys.executable, "-I", "-c", CHILD_SCRIPT, str(path), str(data_path), str(result_path)],
                       check=True, cwd=tmp)
        with np.load(result_path) as result:
            return all(result[name].tobytes() == expected[name].tobytes() for name in expected)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"directory for the training module, checkpoint and curves (default: {DEFAULT_OUT})")
    parser.add_argument("--curves", type=Path, default=None,
                        help="where to write the learning curves (default: OUT/learning_curves.png)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()

    X_train, y_train, X_test, y_test = load_data(rng)
    print(f"digits: {len(X_train)} train / {len(X_test)} test samples, {X_train.shape[1]} features")

    loss, param_tensors = build_network(X_train.shape[1])
    steps = EPOCHS * -(-len(X_train) // BATCH)
    optimizer = gc.optim.Adam(lr=LR, schedule=gc.optim.Cosine(steps))
    step = gc.compile_training(loss, param_tensors, optimizer=optimizer)
    print(f"compiled {optimizer} in {time.perf_counter() - started:.2f} s")

    # He init for the relu layer, Glorot for the output layer, zero biases
    params = gc.init.initialize(step, seed=SEED, overrides={"W1": "he_normal"})
    initial = {name: value.copy() for name, value in params.items()}
    fitted = time.perf_counter()
    history = gc.fit(step, params, data=dict(x=X_train, y=y_train), epochs=EPOCHS, batch_size=BATCH,
                     validation=dict(x=X_test, y=y_test), seed=SEED, progress=not args.no_progress)
    print(f"trained {EPOCHS} epochs in {time.perf_counter() - fitted:.2f} s: train loss {history['loss'][-1]:.4f}, "
          f"test loss {history['val_loss'][-1]:.4f}")

    test_acc = history["val_accuracy"][-1]
    print(f"final test accuracy: {test_acc:.2%} ({int(history['val_errors'][-1])} of {len(X_test)} wrong)")
    if test_acc < MIN_ACCURACY:
        sys.exit(f"FAIL: test accuracy {test_acc:.2%} is below {MIN_ACCURACY:.0%}")

    feed = dict(params, x=X_train[:8], y=y_train[:8])
    report = gc.check_gradients(loss, param_tensors, feed)
    print(report)
    if not report.ok:
        sys.exit("FAIL: compiled gradients disagree with finite differences")

    curves = args.curves or args.out / "learning_curves.png"
    history.plot(curves, title=f"digits, {HIDDEN} hidden units, {optimizer}")
    checkpoint = gc.save_checkpoint(args.out / "digits_checkpoint.npz", params, history.state, history)
    module_path = step.save(args.out / "digits_train.py")
    print(f"wrote the learning curves to {curves}, a checkpoint to {checkpoint} and the generated training "
          f"module to {module_path}")

    if not run_exported(step, module_path, initial, X_train, y_train, X_test, y_test):
        sys.exit(f"FAIL: {module_path} run alone disagrees with the in-process train_step")
    print("the exported module trains without graphcomp, bit for bit as in this process")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
