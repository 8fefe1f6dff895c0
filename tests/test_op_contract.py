"""The op contract is safe for people who extend it: explicit no-gradient, safe buffer reuse, one definition per op."""
import ast
import inspect
import pathlib
import textwrap

import numpy as np
import pytest

import graphcomp as gc
from graphcomp.codegen.ir import Call, Name
from graphcomp.graph import op_function
from graphcomp.op import OPS, Op, no_gradient, register

PACKAGE = pathlib.Path(gc.__file__).parent


def define(source, module="user_ops"):
    """Run an op definition the way a notebook cell or a user's module does."""
    namespace = {"__name__": module, "Op": Op, "register": register, "no_gradient": no_gradient,
                 "Call": Call, "Name": Name}
    exec(textwrap.dedent(source), namespace)   # noqa: S102 - the test's own source
    return namespace


SQUARE = '''
@register
class Square(Op):
    """y = x * x, with a rule."""
    name = "contract_square"

    def infer(self, x):
        return x.shape, x.dtype

    def emit(self, x):
        return Call(Name("np.square"), (x,))

    def vjp(self, ct, y, x):
        return (ct * (2 * x),)
'''


@pytest.fixture
def cleanup():
    before = set(OPS)
    yield
    for name in set(OPS) - before:
        del OPS[name]


def test_an_op_without_a_vjp_rule_cannot_be_differentiated(cleanup):
    define('''
    @register
    class Forgot(Op):
        name = "contract_forgot"

        def infer(self, x):
            return x.shape, x.dtype

        def emit(self, x):
            return x
    ''')
    g = gc.Graph()
    x = g.param("x", (3,))
    y = g.apply("contract_forgot", (x,), {}, name="y")
    with pytest.raises(gc.GradientError, match=r"node 'y': op 'contract_forgot' has no vjp rule"):
        gc.grad(gc.sum(y), x)


def test_an_op_that_declares_no_gradient_gives_zeros(cleanup):
    define('''
    @register
    class Floor(Op):
        name = "contract_floor"
        vjp = no_gradient

        def infer(self, x):
            return x.shape, x.dtype

        def emit(self, x):
            return Call(Name("np.floor"), (x,))
    ''')
    g = gc.Graph()
    x = g.param("x", (3,))
    d = gc.grad(gc.sum(g.apply("contract_floor", (x,), {})), x)
    np.testing.assert_array_equal(gc.compile(d)(x=np.ones(3)), np.zeros(3))


def test_running_an_op_definition_again_replaces_it(cleanup):
    first = define(SQUARE)["Square"]
    second = define(SQUARE)["Square"]
    assert first is not second and type(OPS["contract_square"]) is second
    g = gc.Graph()
    x = g.param("x", (2,))
    y = op_function(OPS["contract_square"])(x)
    assert gc.check_gradients(gc.sum(y), [x], {"x": np.array([0.5, -2.0])}).ok


def test_another_class_cannot_take_a_registered_name(cleanup):
    define(SQUARE)
    with pytest.raises(gc.OpError, match=r"op name 'contract_square' is taken by user_ops.Square"):
        define(SQUARE, module="someone_else")
    with pytest.raises(gc.OpError, match="'tanh' is taken"):
        define(SQUARE.replace('"contract_square"', '"tanh"'))


def test_buffer_reuse_never_overwrites_what_an_undeclared_view_reads(cleanup):
    """An op whose output may alias its argument (here a helper that returns it) pins that argument."""
    define('''
    @register
    class Alias(Op):
        name = "contract_alias"
        helpers = {"_contract_alias": "def _contract_alias(x):\\n    return x\\n"}

        def infer(self, x):
            return x.shape, x.dtype

        def emit(self, x):
            return Call(Name("_contract_alias"), (x,))

        def vjp(self, ct, y, x):
            return (ct,)
    ''')
    g = gc.Graph()
    x = g.input("x", (3,))
    a = gc.exp(x, name="a")
    view = g.apply("contract_alias", (a,), {}, name="view")
    b = gc.neg(a, name="b")          # a's last read: in place into a would change view
    f = gc.compile([view, b])
    assert "out=a" not in f.source
    xs = np.array([0.0, 1.0, -1.0])
    got_view, got_b = f(x=xs)
    np.testing.assert_allclose(got_view, np.exp(xs))
    np.testing.assert_allclose(got_b, -np.exp(xs))


def test_public_functions_come_from_the_op_classes():
    assert str(inspect.signature(gc.sum)) == "(x: 'Tensor | ArrayLike', axis=None, " \
        "keepdims=False, *, name: 'str | None' = None) -> 'Tensor'"
    assert gc.tanh.__doc__ == type(OPS["tanh"]).__doc__
    assert {name for name, op in OPS.items() if op.public} <= set(dir(gc))
    assert "input" not in gc.ops.__all__ and "count" not in gc.ops.__all__
    g = gc.Graph()
    x = g.param("x", (2, 3))
    assert gc.sum(x, 1, True, name="s").shape == (2, 1)
    with pytest.raises(TypeError):
        gc.sum(x, 1, True, "s")           # name is keyword-only


def test_star_import_does_not_shadow_builtins():
    namespace = {}
    exec("from graphcomp import *", namespace)   # noqa: S102
    assert not {"sum", "max", "abs", "pow", "compile", "input"} & set(namespace)
    assert {"grad", "jvp", "hessian", "tanh", "Graph"} <= set(namespace)
    assert gc.__version__ and (PACKAGE / "py.typed").exists()


# Who may import whom (DESIGN.md): module prefix -> graphcomp modules it must not import.
# graph.py imports viz only inside Graph._repr_svg_ (the notebook hook), so "viz" is not in its list.
# io (graph files) sits on graph, op and symbolic; cli sits on top of everything.
LAYERS = {
    "files": ["errors", "shapes", "notation", "graph", "op", "ops", "autodiff", "derivatives", "codegen", "symbolic",
              "train", "check", "viz", "io", "cli"],
    "errors": ["shapes", "notation", "graph", "op", "ops", "autodiff", "derivatives", "codegen", "symbolic", "train",
               "check", "viz", "io", "cli"],
    "shapes": ["notation", "graph", "op", "ops", "autodiff", "derivatives", "codegen", "symbolic", "train", "check",
               "viz", "io", "cli"],
    "notation": ["errors", "shapes", "graph", "op", "ops", "autodiff", "derivatives", "codegen", "symbolic", "train",
                 "check", "viz", "io", "cli"],
    "op": ["graph", "ops", "autodiff", "derivatives", "codegen", "symbolic", "train", "check", "viz", "io", "cli"],
    "graph": ["ops", "autodiff", "derivatives", "codegen", "symbolic", "train", "check", "io", "cli"],
    "ops": ["autodiff", "derivatives", "symbolic", "train", "check", "codegen.emit", "codegen.compiled", "viz", "io",
            "cli"],
    "codegen.ir": ["graph", "op", "ops", "notation", "autodiff", "derivatives", "symbolic", "train", "check",
                   "shapes", "viz", "io", "cli"],
    "codegen.printer": ["graph", "op", "ops", "notation", "autodiff", "derivatives", "symbolic", "train", "check",
                        "shapes", "viz", "io", "cli"],
    "codegen": ["autodiff", "derivatives", "symbolic", "train", "check", "viz", "io", "cli"],
    "autodiff": ["codegen", "symbolic", "train", "check", "viz", "io", "cli"],
    "derivatives": ["codegen.emit", "codegen.compiled", "symbolic", "train", "check", "viz", "io", "cli"],
    "symbolic": ["codegen.emit", "codegen.compiled", "derivatives", "train", "check", "viz", "io", "cli"],
    "scan": ["codegen.emit", "codegen.compiled", "symbolic", "train", "check", "viz", "io", "cli"],
    "train": ["check", "viz", "io", "cli"],
    "check": ["train", "viz", "io", "cli"],
    "viz": ["autodiff", "derivatives", "symbolic", "train", "check", "io", "cli"],
    # the training package's leaves: optimizers print IR only; init, history and checkpoints are plain NumPy
    "train.optim": ["graph", "op", "ops", "autodiff", "derivatives", "codegen.emit", "codegen.compiled",
                    "codegen.printer", "check", "train.step", "train.optimized", "train.fit", "io", "cli"],
    "train.init": ["graph", "op", "ops", "autodiff", "derivatives", "codegen", "check", "train.step",
                   "train.optimized", "train.fit", "io", "cli"],
    "train.history": ["graph", "op", "ops", "autodiff", "derivatives", "codegen", "check", "train.step",
                      "train.optimized", "train.fit", "train.checkpoint", "io", "cli"],
    "train.checkpoint": ["graph", "op", "ops", "autodiff", "derivatives", "codegen", "check", "train.step",
                         "train.optimized", "train.fit", "io", "cli"],
    "train.fit": ["autodiff", "derivatives", "codegen", "check", "train.step", "io", "cli"],
    "io": ["autodiff", "derivatives", "codegen", "train", "check", "viz", "cli"],
}


def imported(path):
    """The graphcomp modules a source file imports, as dotted names relative to the package."""
    module = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
    package = module.rsplit(".", 1)[0] if "." in module else ""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if package else []
            base = ".".join(p for p in base if p)
            target = ".".join(p for p in (base, node.module or "") if p)
            names |= {f"{target}.{a.name}".strip(".") for a in node.names} | {target}
    return module, names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    module, names = imported(path)
    rule = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")),
               key=len, default=None)
    if rule is None:
        return
    bad = sorted(n for n in names for f in LAYERS[rule] if n == f or n.startswith(f + "."))
    assert not bad, f"{module} imports {bad}"
