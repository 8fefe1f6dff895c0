"""The ``graphcomp`` command line: compile, differentiate, check, inspect, draw and train graph files; imports the
public API (it sits on top of everything).

Exit codes: 0 success, 1 a failure (a bad file, a gradient mismatch, a feed
that does not fit, Graphviz missing), 2 a usage error (an unknown option, a
node the graph does not have). Errors go to stderr as one line, without a
traceback unless ``--debug`` is given. See docs/cli.md.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
import zipfile

import numpy as np

from . import __version__, compile, compile_training, derivative, fit, grad, init, optim, render, to_dot
from . import check_gradients, load_graph, save_graph
from .errors import GraphError
from .files import atomic
from .viz import RenderError
from .graph import Graph
from .ops import add, log_softmax, nll_loss, relu

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}
DEMO_DIR = "graphcomp-demo"


class UsageError(Exception):
    """A command line that names what the graph does not have (exit code 2)."""


class Failure(Exception):
    """A command that ran and failed: its message is the whole story (exit code 1)."""


# ---- commands ------------------------------------------------------------------------------------


def cmd_compile(args):
    graph = _load(args.graph)
    outputs = _nodes(graph, args.outputs, "--outputs")
    _emit(compile(outputs).source, args.output)


def cmd_grad(args):
    graph = _load(args.graph)
    loss = _node(graph, args.loss, "--loss")
    wrt = _wrt(graph, args.wrt)
    _emit(compile([loss, *grad(loss, wrt)]).source, args.output)


def cmd_check(args):
    graph, values = load_graph(args.graph, with_values=True)
    loss = _node(graph, args.loss, "--loss")
    wrt = _wrt(graph, args.wrt)
    feed = {**values, **_arrays(args.feed, "--feed")}
    report = check_gradients(loss, wrt, feed, rtol=args.rtol, atol=args.atol, max_checks=args.max_checks)
    print(report)
    if not report.ok:
        raise Failure(f"gradient mismatch: {', '.join(report.faulty) or 'see the table above'}")


def cmd_inspect(args):
    graph = _load(args.graph)
    loss = _node(graph, args.loss, "--loss")
    for w in _wrt(graph, args.wrt):
        formula = derivative(loss, w)
        print(formula.latex() if args.latex else formula)


def cmd_render(args):
    graph = _load(args.graph)
    if args.loss is not None:
        grad(_node(graph, args.loss, "--loss"), _wrt(graph, args.wrt))
    options = {"gradients": args.gradients or args.loss is not None, "shapes": not args.no_shapes}
    if args.output.lower().endswith(".dot"):
        _write_text(args.output, to_dot(graph, **options))
    else:
        try:
            render(graph, args.output, **options)
        except RenderError as e:
            raise Failure(f"{e} (here: -o {os.path.splitext(args.output)[0]}.dot)") from None
    print(f"wrote {args.output}", file=sys.stderr)


def cmd_train(args):
    graph, values = load_graph(args.graph, with_values=True)
    loss = _node(graph, args.loss, "--loss")
    wrt = _wrt(graph, args.wrt)
    try:
        optimizer = OPTIMIZERS[args.optimizer](lr=args.lr)
    except GraphError as e:
        raise UsageError(f"--lr: {e}") from None
    step = compile_training(loss, wrt, optimizer=optimizer)
    wanted = [w.name for w in wrt]
    given = {k: v for k, v in values.items() if k in wanted}
    given.update(_arrays(args.init, "--init") if args.init is not None else {})
    params = {} if set(wanted) <= set(given) else init.initialize(step, seed=args.seed)
    params.update(given)
    data = _arrays(args.data, "--data")
    history = fit(step, params, data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  progress=False, callbacks=[_report])
    _write_npz(args.output, params)
    print(f"trained {', '.join(params)} for {history.epochs} epochs; wrote {args.output}", file=sys.stderr)


def _report(epoch, history, params, state):
    shown = ", ".join(f"{k} {v:.6g}" for k, v in history.last().items())
    print(f"epoch {epoch}: {shown}", file=sys.stderr)


def cmd_demo(args):
    directory = args.directory
    os.makedirs(directory, exist_ok=True)
    graph, loss, values, data = _demo_network()
    path = save_graph(graph, os.path.join(directory, "mlp.json"), values=values)
    _write_npz(os.path.join(directory, "data.npz"), data)
    _write_npz(os.path.join(directory, "feed.npz"), {k: v[:8] for k, v in data.items()})
    print(f"wrote {path} (an MLP with its initial weights beside it in mlp.npz), data.npz (600 examples of 3 "
          f"classes) and feed.npz (8 of them)\n\ntry:")
    quoted = directory if directory.isidentifier() or directory == DEMO_DIR else repr(directory)
    for line in ("compile {d}/mlp.json --outputs loss -o mlp_fwd.py",
                 "grad {d}/mlp.json --loss loss --wrt W1,b1,W2,b2 -o mlp_grad.py",
                 "check {d}/mlp.json --loss loss --wrt W1,b1 --feed {d}/feed.npz",
                 "inspect {d}/mlp.json --loss loss --wrt W1",
                 "render {d}/mlp.json -o mlp.svg --loss loss --wrt W1,b1,W2,b2",
                 "train {d}/mlp.json --loss loss --data {d}/data.npz --epochs 5 -o params.npz"):
        print("  graphcomp " + line.format(d=quoted))


def _demo_network():
    """The founding MLP (8 -> 16 -> 3) with initial weights, and three Gaussian blobs to classify."""
    g = Graph("mlp")
    x = g.input("x", (None, 8))
    y = g.input("y", (None,), dtype="int64")
    W1, b1 = g.param("W1", (8, 16)), g.param("b1", (16,))
    W2, b2 = g.param("W2", (16, 3)), g.param("b2", (3,))
    h = relu(x @ W1 + b1, name="h")
    logits = add(h @ W2, b2, name="logits")
    loss = nll_loss(log_softmax(logits, axis=-1), y, name="loss")
    rng = np.random.default_rng(0)
    values = {"W1": rng.normal(0, 1 / np.sqrt(8), (8, 16)), "b1": np.zeros(16),
              "W2": rng.normal(0, 1 / np.sqrt(16), (16, 3)), "b2": np.zeros(3)}
    labels = rng.integers(0, 3, 600)
    centres = rng.normal(0, 2, (3, 8))
    return g, loss, values, {"x": centres[labels] + rng.normal(size=(600, 8)), "y": labels}


# ---- helpers -------------------------------------------------------------------------------------


def _load(path):
    return load_graph(path)


def _node(graph, name, option):
    if name not in graph:
        close = difflib.get_close_matches(name, list(graph.nx), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else _some_nodes(graph)
        raise UsageError(f"{option}: graph {graph.name!r} has no node {name!r}{hint}")
    return graph[name]


def _nodes(graph, text, option):
    """The nodes a comma-separated option names (a name holding commas is taken whole if the graph has it)."""
    names = [text] if text in graph else [n for n in text.split(",") if n]
    if not names:
        raise UsageError(f"{option}: name at least one node")
    return [_node(graph, n, option) for n in names]


def _wrt(graph, text):
    if text is None:
        return [graph[n] for n, op in graph.nx.nodes(data="op") if op == "param"]
    return _nodes(graph, text, "--wrt")


def _some_nodes(graph):
    params = [n for n, op in graph.nx.nodes(data="op") if op in ("param", "input")]
    return f" (its inputs and params: {', '.join(map(repr, params[:20]))})" if params else ""


def _arrays(path, option):
    """The arrays of an .npz (or one .npy), read without pickle."""
    try:
        with np.load(path, allow_pickle=False) as found:
            if isinstance(found, np.ndarray):
                raise Failure(f"{option}: {path!r} is a single array; expected an .npz of named arrays")
            return {k: found[k] for k in found.files}
    except OSError as e:
        raise Failure(f"{option}: cannot read {path!r}: {e.strerror or e}") from None
    except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise Failure(f"{option}: {path!r} is not an .npz of plain arrays: {e}") from None


def _emit(source, output):
    if output is None:
        sys.stdout.write(source)
    else:
        _write_text(output, source)
        print(f"wrote {output}", file=sys.stderr)


def _write_text(path, text):
    with _writing(path, text=True) as f:
        f.write(text)


def _write_npz(path, arrays):
    with _writing(path) as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def _writing(path, text=False):
    """``files.atomic``, with a directory that cannot be written to a Failure naming ``path``."""
    try:
        with atomic(path, text=text) as f:
            yield f
    except OSError as e:
        raise Failure(f"cannot write {path!r}: {e.strerror or e}") from None


# ---- the parser ----------------------------------------------------------------------------------


def parser():
    """The argparse parser of every command."""
    top = argparse.ArgumentParser(
        prog="graphcomp", description="Compile neural-network graph files into readable NumPy code, check and "
                                      "draw their gradients, train them.",
        epilog="Exit codes: 0 success, 1 failure (bad file, gradient mismatch), 2 usage error. "
               "See docs/cli.md.")
    top.add_argument("--version", action="version", version=f"graphcomp {__version__}")
    top.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, function, help_text, description):
        p = commands.add_parser(name, help=help_text, description=description)
        p.set_defaults(run=function)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
        return p

    def graph_file(p):
        p.add_argument("graph", help="a graph file written by gc.save_graph (.json)")

    def loss_wrt(p, required_loss=True):
        p.add_argument("--loss", required=required_loss, help="the scalar node to differentiate")
        p.add_argument("--wrt", help="comma-separated nodes to differentiate for (default: every param)")

    p = command("compile", cmd_compile, "write the NumPy module computing some nodes",
                "Write the generated NumPy module whose run() computes the given nodes.")
    graph_file(p)
    p.add_argument("--outputs", required=True, help="comma-separated nodes to compute")
    p.add_argument("-o", "--output", help="the .py file to write (default: standard output)")

    p = command("grad", cmd_grad, "write the NumPy module computing a loss and its gradients",
                "Write the generated module whose run() returns the loss and its gradient for each --wrt node.")
    graph_file(p)
    loss_wrt(p)
    p.add_argument("-o", "--output", help="the .py file to write (default: standard output)")

    p = command("check", cmd_check, "check gradients against finite differences (exit 1 on a mismatch)",
                "Compare the generated gradients with central finite differences and print the table. Values "
                "come from the graph's side .npz, then --feed. Exit code 1 on a mismatch.")
    graph_file(p)
    loss_wrt(p)
    p.add_argument("--feed", required=True, help="an .npz with the inputs (and params) the loss needs")
    p.add_argument("--rtol", type=float, help="relative tolerance (default 1e-5 in float64)")
    p.add_argument("--atol", type=float, help="absolute tolerance (default 1e-8 in float64)")
    p.add_argument("--max-checks", type=int, help="check at most this many entries per node")

    p = command("inspect", cmd_inspect, "print the derivative formula",
                "Print the derivative of --loss for each --wrt node as math (or LaTeX).")
    graph_file(p)
    loss_wrt(p)
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of text")

    p = command("render", cmd_render, "draw the graph (.svg, .png, .pdf with Graphviz; .dot without)",
                "Draw the graph with Graphviz's dot program (.svg, .png, .pdf) or write its DOT text (.dot).")
    graph_file(p)
    p.add_argument("-o", "--output", required=True, help="the picture to write: .svg, .png, .pdf or .dot")
    p.add_argument("--gradients", action="store_true", help="also draw the gradient nodes the file holds")
    p.add_argument("--no-shapes", action="store_true", help="leave shapes and dtypes out of the labels")
    loss_wrt(p, required_loss=False)

    p = command("train", cmd_train, "train the params on data and write them to an .npz",
                "Train with minibatches (gc.fit): initial params from --init, else the graph's side .npz, else "
                "gc.init.initialize; the loss is printed after each epoch.")
    graph_file(p)
    loss_wrt(p)
    p.add_argument("--data", required=True, help="an .npz with one array per data input, one row per example")
    p.add_argument("--epochs", type=int, default=5, help="epochs to train (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step (default 32)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="default adam")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seeds initialization and the order of examples")
    p.add_argument("--init", help="an .npz of initial params")
    p.add_argument("-o", "--output", required=True, help="the .npz to write the trained params to")

    p = command("demo", cmd_demo, "write a small MLP graph file and data to try the other commands on",
                "Write an MLP graph file with initial weights, a dataset and a feed into a directory, and print "
                "the commands to try on them.")
    p.add_argument("directory", nargs="?", default=DEMO_DIR, help=f"where to write (default ./{DEMO_DIR})")
    return top


def main(argv=None) -> int:
    """Run one command; returns its exit code (the console script exits with it)."""
    top = parser()
    try:
        args = top.parse_args(argv)
    except SystemExit as e:           # --help, --version (0) and usage errors (2), already printed
        return e.code if isinstance(e.code, int) else 2
    name = f"graphcomp {args.command}"
    try:
        args.run(args)
    except UsageError as e:
        if args.debug:
            raise
        print(f"{name}: usage error: {e}", file=sys.stderr)
        return 2
    except (Failure, GraphError, OSError) as e:
        if args.debug:
            raise
        text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        where = f" {e.filename!r}" if isinstance(e, OSError) and e.filename else ""
        print(f"{name}: error: {type(e).__name__ + ': ' if isinstance(e, GraphError) else ''}{text}{where}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return 0


def run():
    """The console script: ``graphcomp ...``."""
    sys.exit(main())
