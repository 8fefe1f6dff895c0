"""Code IR: the expressions and statements generated modules are built from; imports nothing."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Const:
    """A literal: number, bool, None, str or a tuple of those."""

    value: object


@dataclass(frozen=True)
class Attr:
    value: object
    attr: str


@dataclass(frozen=True)
class Call:
    func: object
    args: tuple = ()
    kwargs: tuple = ()          # ((name, expr), ...)


@dataclass(frozen=True)
class Index:
    value: object
    index: object


@dataclass(frozen=True)
class Slice:
    """``start:stop:step`` inside an Index; None parts are left out."""

    start: object = None
    stop: object = None
    step: object = None


@dataclass(frozen=True)
class Tuple:
    items: tuple


@dataclass(frozen=True)
class BinOp:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class UnOp:
    op: str
    operand: object


@dataclass(frozen=True)
class Dict:
    """A dict display, ``{key: value, ...}``, one item a line."""

    items: tuple                # ((key expr, value expr), ...)


@dataclass(frozen=True)
class ListComp:
    """``[element for var in range(count)]``."""

    element: object
    var: str
    count: int


@dataclass(frozen=True)
class Loop:
    """What a loop op emits: ``count`` calls of a body subgraph (``op.Body``) with the index and
    ``args``, stacked (``reduce="stack"``) or summed. Codegen compiles the body to a function."""

    body: object
    count: int
    args: tuple
    reduce: str


@dataclass(frozen=True)
class Scan:
    """What a scan op emits: a loop over the leading axis of the ``xs`` args that carries state.

    ``body`` (an ``op.Body``) computes ``(*new_carry, *y_t)`` from ``(*carry, *x_t, *consts)``;
    codegen compiles it to a step function and the loop to a function returning
    ``(*final_carry, *stacked_ys[, *stacked_carries])``.
    """

    body: object
    args: tuple                 # init carries, then xs, then loop-invariant consts
    carries: int
    xs: int
    reverse: bool
    history: bool               # also return the carry entering each step, stacked


@dataclass(frozen=True)
class Assign:
    target: object              # Name, Index or Tuple of Names
    value: object
    comment: str = ""
    node: str = ""              # the graph node it computes, for the line table of errors


@dataclass(frozen=True)
class AugAssign:
    target: object
    op: str
    value: object
    comment: str = ""


@dataclass(frozen=True)
class For:
    """``for var in range(*bounds):`` with a block of statements."""

    var: str
    bounds: tuple               # (stop,) or (start, stop, step)
    body: tuple


@dataclass(frozen=True)
class Del:
    """``del a, b``: drop names whose arrays nothing reads any more, so their memory is reused."""

    names: tuple


@dataclass(frozen=True)
class If:
    """``if test:`` with a block of statements."""

    test: object
    body: tuple


@dataclass(frozen=True)
class Raise:
    value: object


@dataclass(frozen=True)
class Return:
    value: object


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class FunctionDef:
    name: str
    params: tuple
    body: tuple
    doc: str = ""


@dataclass(frozen=True)
class Module:
    doc: str
    imports: tuple              # module names, e.g. ("numpy as np",)
    body: tuple = field(default=())  # FunctionDefs, Assigns and raw helper sources (str)


def np_call(func, *args, **kwargs):
    """``np.<func>(*args, **kwargs)``; kwargs whose value is None are left out."""
    expressions = (Name, Const, Attr, Call, Index, Slice, Tuple, BinOp, UnOp, ListComp)
    kw = tuple((k, v if isinstance(v, expressions) else Const(v))
               for k, v in kwargs.items() if v is not None)
    return Call(Attr(Name("np"), func), tuple(args), kw)


def np_attr(name):
    """``np.<name>``, e.g. a dtype: ``np_attr("float32")``."""
    return Attr(Name("np"), name)
