"""The NumPy printer: parentheses by Python's precedence, literals, safe comments."""
import pytest

from graphcomp.codegen import ir
from graphcomp.codegen.printer import NumpyPrinter, comment_text

a, b, c = ir.Name("a"), ir.Name("b"), ir.Name("c")


@pytest.mark.parametrize("tree, text", [
    (ir.BinOp("*", ir.BinOp("+", a, b), c), "(a + b) * c"),
    (ir.BinOp("+", a, ir.BinOp("*", b, c)), "a + b * c"),
    (ir.BinOp("-", a, ir.BinOp("-", b, c)), "a - (b - c)"),
    (ir.BinOp("-", ir.BinOp("-", a, b), c), "a - b - c"),
    (ir.BinOp("**", ir.Const(-2), ir.Const(-1)), "(-2) ** -1"),
    (ir.BinOp("**", ir.BinOp("**", a, b), c), "(a ** b) ** c"),
    (ir.UnOp("-", ir.BinOp("**", a, ir.Const(2))), "-a ** 2"),
    (ir.UnOp("-", ir.BinOp("+", a, b)), "-(a + b)"),
    (ir.BinOp(">", ir.BinOp(">", a, b), c), "(a > b) > c"),
    (ir.BinOp("@", a, ir.Attr(b, "T")), "a @ b.T"),
    (ir.Attr(ir.BinOp("+", a, b), "T"), "(a + b).T"),
    (ir.Attr(ir.Const(1), "real"), "(1).real"),
    (ir.Const(float("inf")), "np.inf"),
    (ir.Const(float("-inf")), "-np.inf"),
    (ir.Const(float("nan")), "np.nan"),
    (ir.Const((1,)), "(1,)"),
    (ir.Index(a, ir.Tuple((b, c))), "a[b, c]"),
    (ir.Return(ir.Tuple((a,))), "return (a,)"),
    (ir.Assign(ir.Tuple((a,)), b), "(a,) = b"),
])
def test_precedence_and_literals(tree, text):
    assert NumpyPrinter().print(tree) == text


def test_printed_expressions_evaluate_as_built():
    import math
    env = {"a": 2.0, "b": 3.0, "c": 4.0}
    tree = ir.BinOp("-", a, ir.BinOp("-", b, ir.BinOp("**", ir.UnOp("-", c), ir.Const(2))))
    assert eval(NumpyPrinter().print(tree), env) == 2.0 - (3.0 - (-4.0) ** 2)  # noqa: S307 - test of our printer
    assert math.isclose(eval(NumpyPrinter().print(ir.BinOp("/", a, ir.BinOp("*", b, c))), env), 2 / 12)  # noqa: S307


def test_comments_stay_on_one_line():
    assert comment_text("a\nb\r\x00c") == "a\\nb\\r\\x00c"
