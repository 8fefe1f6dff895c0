"""Train an LSTM on the adding problem with graphcomp-generated code: gc.scan and back-propagation through time.

Each sequence has T steps of two features: a random value in [0, 1) and a
marker that is 1 at exactly two steps (one in each half). The target is the
sum of the two marked values, so the network must remember them across the
sequence. Always answering 1.0 scores a mean squared error of about 0.167.

The network is an LSTM cell (hidden 32, PyTorch's weight layout and gate
order) scanned over the steps with ``gc.scan``, then a linear read-out of the
last hidden state and ``mse_loss``. ``gc.compile([loss, *grads])`` generates
one function: a Python loop over the time steps for the forward pass, the
reversed loop for the gradient, vectorized NumPy over the batch inside both.
The update is Adam, a few lines of NumPy here. The script

1. prints the loss curve (every 50 steps) and fails below a 10x improvement on the baseline,
2. checks the gradients against central finite differences,
3. writes the generated module (``--out``) and runs it in an isolated interpreter
   that cannot import graphcomp, comparing loss and gradients with the in-process run.

Run it from anywhere: ``python examples/train_lstm_adding.py [--out PATH]``.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import graphcomp as gc

SEED = 0
STEPS = 20            # sequence length
HIDDEN = 32
BATCH = 64
ITERATIONS = 800
LR = 0.01
MAX_TEST_MSE = 0.0167
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "lstm_adding.py"

CHILD_SCRIPT = """
import sys
sys.modules["graphcomp"] = None  # any `import graphcomp` now raises ImportError
import importlib.util
import numpy as np

module_path, data_path, result_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_lstm", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = np.load(data_path)
names = [name for name, _, _ in module.INPUTS]
results = module.run(*(data[name] for name in names))
np.savez(result_path, *results)
"""


def adding_problem(rng, n):
    """A batch: xs (STEPS, n, 2) of values and markers, zero initial states, and the sums of the marked values."""
    values = rng.random((STEPS, n))
    first = rng.integers(0, STEPS // 2, n)
    second = rng.integers(STEPS // 2, STEPS, n)
    markers = np.zeros((STEPS, n))
    markers[first, np.arange(n)] = 1.0
    markers[second, np.arange(n)] = 1.0
    zeros = np.zeros((n, HIDDEN))
    return {"xs": np.stack([values, markers], axis=-1), "h0": zeros, "c0": zeros,
            "target": (values * markers).sum(axis=0)[:, None]}


def build_network():
    """Declare the LSTM over time and its read-out; return (loss, prediction, params)."""
    g = gc.Graph("lstm_adding")
    xs = g.input("xs", (STEPS, None, 2))
    target = g.input("target", (None, 1))
    W_ih, W_hh = g.param("W_ih", (4 * HIDDEN, 2)), g.param("W_hh", (4 * HIDDEN, HIDDEN))
    b_ih, b_hh = g.param("b_ih", (4 * HIDDEN,)), g.param("b_hh", (4 * HIDDEN,))
    W_out, b_out = g.param("W_out", (HIDDEN, 1)), g.param("b_out", (1,))
    h0, c0 = g.input("h0", (None, HIDDEN)), g.input("c0", (None, HIDDEN))     # fed zeros: the initial state

    def step(state, x):
        h, c = gc.lstm_cell(state, x, W_ih, W_hh, b_ih, b_hh)
        return [h, c], None
    (h, _), _ = gc.scan(step, [h0, c0], xs, name="lstm")
    prediction = gc.add(h @ W_out, b_out, name="prediction")
    loss = gc.mse_loss(prediction, target, name="loss")
    return loss, prediction, [W_ih, W_hh, b_ih, b_hh, W_out, b_out]


def init_params(rng):
    """PyTorch's LSTMCell initialization: uniform in +-1/sqrt(hidden); forget-gate bias 1."""
    k = 1 / np.sqrt(HIDDEN)
    params = {"W_ih": rng.uniform(-k, k, (4 * HIDDEN, 2)), "W_hh": rng.uniform(-k, k, (4 * HIDDEN, HIDDEN)),
              "b_ih": rng.uniform(-k, k, 4 * HIDDEN), "b_hh": rng.uniform(-k, k, 4 * HIDDEN),
              "W_out": rng.uniform(-k, k, (HIDDEN, 1)), "b_out": np.zeros(1)}
    params["b_ih"][HIDDEN:2 * HIDDEN] = 1.0
    return params


class Adam:
    """Adam (Kingma & Ba) on a dict of arrays, updated in place."""

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def update(self, params, grads):
        self.t += 1
        scale = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for k, g in grads.items():
            self.m[k] += (1 - self.beta1) * (g - self.m[k])
            self.v[k] += (1 - self.beta2) * (g * g - self.v[k])
            params[k] -= scale * self.m[k] / (np.sqrt(self.v[k]) + self.eps)


def run_exported(f, path, feed):
    """Run the saved module in an isolated interpreter; True when it matches the in-process run."""
    expected = f(**feed)
    with tempfile.TemporaryDirectory() as tmp:
        data_path, result_path = Path(tmp) / "data.npz", Path(tmp) / "result.npz"
        np.savez(data_path, **feed)
        subprocess.run([sys.executable, "-I", "-c", CHILD_SCRIPT, str(path), str(data_path), str(result_path)],
                       check=True, cwd=tmp)
        with np.load(result_path) as result:
            got = [result[f"arr_{k}"] for k in range(len(result.files))]
    print(f"exported module: loss {float(got[0]):.6f} (in-process {float(expected[0]):.6f})")
    return all(np.allclose(a, b) for a, b in zip(got, expected, strict=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the generated module (default: {DEFAULT_OUT})")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)

    started = time.perf_counter()
    loss, prediction, param_tensors = build_network()
    names = [p.name for p in param_tensors]
    f = gc.compile([loss, *gc.grad(loss, param_tensors)])
    predict = gc.compile(prediction)
    print(f"compiled loss, BPTT gradients and predictor in {time.perf_counter() - started:.2f} s")

    params = init_params(rng)
    adam = Adam(params, LR)
    test = adding_problem(rng, 1000)
    print(f"baseline (always 1.0): test mse {np.mean((test['target'] - 1.0) ** 2):.4f}")
    started = time.perf_counter()
    running = None
    for it in range(1, ITERATIONS + 1):
        loss_value, *grads = f(**adding_problem(rng, BATCH), **params)
        adam.update(params, dict(zip(names, grads, strict=True)))
        running = loss_value if running is None else 0.95 * running + 0.05 * loss_value
        if it % 50 == 0:
            print(f"step {it:4d}  loss {running:.4f}")
    print(f"trained {ITERATIONS} steps in {time.perf_counter() - started:.2f} s")

    inputs = {k: v for k, v in test.items() if k != "target"}
    test_mse = float(np.mean((predict(**inputs, **params) - test["target"]) ** 2))
    print(f"final test mse: {test_mse:.4f}")
    if test_mse > MAX_TEST_MSE:
        sys.exit(f"FAIL: test mse {test_mse:.4f} is above {MAX_TEST_MSE}")

    feed = dict(params, xs=test["xs"][:, :4], h0=test["h0"][:4], c0=test["c0"][:4], target=test["target"][:4])
    report = gc.check_gradients(loss, param_tensors, feed, max_checks=200)
    print(report)
    if not report.ok:
        sys.exit("FAIL: compiled gradients disagree with finite differences")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    f.save(args.out)
    print(f"wrote the generated module to {args.out}")
    if not run_exported(f, args.out, feed):
        sys.exit(f"FAIL: {args.out} run alone disagrees with the in-process run")
    print("exported module runs without graphcomp and matches the in-process run")


if __name__ == "__main__":
    main()
