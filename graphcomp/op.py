"""The op contract and the op registry; imports only errors, shapes and notation.

An op is one class: ``infer`` gives the output shape and dtype, ``emit``
builds the NumPy expression (code IR), ``vjp`` builds the gradient from
other ops. Registering the class is all it takes for the op to be callable
as ``gc.<name>`` (see ``graph.op_function``). Autodiff and codegen only ever
ask the op; they never name it.
"""
import itertools
from dataclasses import dataclass, field

import numpy as np

from . import notation
from .errors import DTypeError, OpError

OPS = {}
_BODIES = itertools.count()


def register(cls):
    """Class decorator: add one instance of an op class to ``OPS`` under ``cls.name``.

    Running the same definition again (a re-run notebook cell, a reloaded
    module: same module and class name) replaces the op; another class
    claiming a name that is taken raises OpError.
    """
    old = OPS.get(cls.name)
    if old is not None and (type(old).__module__, type(old).__qualname__) != (cls.__module__, cls.__qualname__):
        raise OpError(f"op name {cls.name!r} is taken by {type(old).__module__}.{type(old).__qualname__}; "
                      f"{cls.__module__}.{cls.__qualname__} needs another name")
    OPS[cls.name] = cls()
    return cls


def no_gradient(self, ct, y, *args, **params):
    """The VJP of an op whose derivative is zero wherever it exists (comparisons, sign, counts).

    Ops declare it with ``vjp = no_gradient``; an op that declares nothing
    has no rule, and ``grad`` refuses to differentiate through it.
    """
    return (None,) * len(args)


class Op:
    """Base of every op.

    Attributes:
        name: registry key, public function name and ``op`` node attribute.
        public: whether ``gc.<name>`` exists (leaves and internal helpers have none).
        inline: the op is a literal or a free view; codegen writes it into
            its users' expressions instead of giving it a statement.
        leaf: the value is fed at run time (an argument of generated code).
        broadcast: the output is the first arg broadcast to a shape, nothing
            more (element-wise ops may read the arg itself instead).
        several: the op yields several arrays: ``infer`` returns one
            ``(shape, dtype)`` per output, the node's value is their tuple
            (shape (), dtype object) and ``part`` nodes read one each; its
            ``vjp`` gets a tuple of cotangents (None where none reaches).
        maps_leading_axes: given args with extra leading axes (per-step values stacked over a
            loop's steps) and the others as they are, the op computes its result for each leading
            index (element-wise ops, matmul). A scan then sums the gradient of a loop-invariant
            arg over all steps after the loop, in one op, instead of step by step.
        view: ``emit`` gives its first arg's array in another shape, a view of it or a copy (later
            args give only shapes), so the node may take over that array's buffer once it is dead.
        fresh: ``emit`` always gives a new array that shares no memory with anything else (a
            helper that allocates its result), so codegen may write later results into it once it
            is dead. False (the default) is always safe; a test checks every op that says True.
        helpers: module-level helper functions (name -> source or FunctionDef)
            that ``emit`` calls; written once into each generated module.
        helper_names: the names ``helpers`` may hold, which no node may take
            (known without building the helpers).
        imports: modules other than NumPy that the helpers use (``"scipy.special"``).
        signature: optional; the ``inspect.Signature`` of the op's args and params when it differs
            per instance (``gc.elementwise`` ops); otherwise ``normalize``'s or ``infer``'s is read.
        vjp: ``vjp(ct, y, *args, **params)`` returns one cotangent Tensor per
            arg, built from ops, with None for an arg that gets none (an
            integer arg, a piecewise-constant op); for an arg with several
            outputs, a dict ``{output index: Tensor}``. None (the default) means
            the op has no rule: ``grad`` raises rather than assume zero.
    """

    name = ""
    public = True
    inline = False
    leaf = False
    broadcast = False
    several = False
    maps_leading_axes = False
    view = False
    fresh = False
    helpers = {}
    imports = ()
    vjp = None

    @property
    def helper_names(self):
        return tuple(self.helpers)

    def weak(self, **params):
        """Whether a scalar output is a Python scalar at run time, so weakly typed (NumPy 2)."""
        return False

    def normalize(self, *args, **params):
        """Check and canonicalize params (e.g. axes); returns the params."""
        return params

    def infer(self, *args, **params):
        """Return ``(shape, dtype)`` of the output; raise a GraphError if the args do not fit."""
        raise NotImplementedError

    def emit(self, *args, **params):
        """Return the code IR expression computing the output from arg expressions."""
        raise NotImplementedError

    def simplify(self, *args, **params):
        """Return a Tensor equal to the result (an existing one, or one built of simpler
        nodes), or None to build this node."""
        return None

    def bounds(self, *args, **params):
        """``{arg position: (low, high, what)}``: fed args whose values must lie in [low, high)
        (labels: class indices). The compiled wrapper checks ``low`` on every call (cheaply)
        and both bounds when a run fails, to name the value at fault."""
        return {}

    def math(self, shapes, *args, **params):
        """The node as textbook math: a sympy expression built with ``notation`` from its args'
        expressions. ``shapes`` are the output's shape, then each arg's, with sympy dims."""
        return notation.apply(self.name, shapes[0], *args)

    def formula(self, *args, **params):
        """How the node reads in comments and reports, from its arg names."""
        shown = [*args, *(f"{k}={_compact(k, v)}" for k, v in params.items())]
        return f"{self.name}({', '.join(shown)})"


@dataclass(frozen=True, eq=False)
class Body:
    """A subgraph that a loop op runs once per index: a param of the op, compiled to a function.

    Attributes:
        graph: the Graph of the body.
        inputs: its input node names, in the order its function takes them: for
            a map the loop index first (an int64 scalar), then one per arg of
            the op; for a scan the carries, one step of each sequence, then
            the loop-invariant values.
        output: the node the body returns, or a tuple of nodes (a scan's step
            returns its new carries and outputs).
        doc: the docstring of its generated function.
    """

    graph: object
    inputs: tuple
    output: str
    doc: str = ""
    serial: int = field(default_factory=lambda: next(_BODIES))

    def __repr__(self):      # what sharing of equal nodes compares: one body is equal only to itself
        return f"Body#{self.serial}"


def _compact(key, value):
    """A param as people write it: ``axis=0`` rather than ``axis=(0,)``."""
    one_axis = key == "axis" and isinstance(value, tuple) and len(value) == 1
    return repr(value[0] if one_axis else value)


def weak_value(t):
    """What stands for ``t`` in dtype promotion: a Python scalar if ``t`` is weak, else its dtype."""
    dtype = np.dtype(t.dtype)
    if t.weak:
        return {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}[dtype.kind]
    return dtype


def result_dtype(*args):
    """NumPy's result dtype for element-wise ops, with scalar constants weak."""
    return np.result_type(*(weak_value(a) for a in args)).name


def require_float(t, what):
    """Raise DTypeError unless tensor ``t`` has a floating dtype."""
    if np.dtype(t.dtype).kind != "f":
        raise DTypeError(f"{what} needs a floating-point input, got {t.name!r} of dtype {t.dtype}")


def refuse_bool(t, what):
    """Raise DTypeError if tensor ``t`` is bool (NumPy refuses -b, b - b and sign(b) when run)."""
    if t.dtype == "bool":
        raise DTypeError(f"{what} is not defined for bool {t.name!r}; cast it to a number first")
