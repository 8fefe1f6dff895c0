"""The op contract and the op registry; imports only errors and shapes.

An op is one class: ``infer`` gives the output shape and dtype, ``emit``
builds the NumPy expression (code IR), ``vjp`` builds the gradient from
other ops. Autodiff and codegen only ever ask the op; they never name it.
"""
import numpy as np

from .errors import DTypeError

OPS = {}


def register(cls):
    """Class decorator: add one instance of an op class to ``OPS``."""
    if cls.name in OPS:
        raise ValueError(f"op {cls.name!r} is registered twice")
    OPS[cls.name] = cls()
    return cls


class Op:
    """Base of every op.

    Attributes:
        name: registry key, public function name and ``op`` node attribute.
        inline: the op is a literal or a free view; codegen writes it into
            its users' expressions instead of giving it a statement.
        view: the output may share memory with an argument (reshape,
            broadcast), so codegen never writes into it or what it views.
        leaf: the value is fed at run time (an argument of generated code).
        helpers: module-level helper functions (name -> source) that
            ``emit`` calls; written once into each generated module.
    """

    name = ""
    inline = False
    view = False
    leaf = False
    helpers = {}

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

    def vjp(self, ct, y, *args, **params):
        """Return one cotangent Tensor (or None) per arg, built from ops."""
        return (None,) * len(args)

    def simplify(self, *args, **params):
        """Return an existing Tensor equal to the result, or None to build a node."""
        return None

    def formula(self, *args, **params):
        """How the node reads in comments and reports, from its arg names."""
        shown = [*args, *(f"{k}={_compact(k, v)}" for k, v in params.items())]
        return f"{self.name}({', '.join(shown)})"


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
