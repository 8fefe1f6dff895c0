"""graphcomp: declare a network as a graph, differentiate it, and compile it to NumPy code.

Public API only; see docs/api.md. ``from graphcomp import *`` leaves out the
names that would shadow Python builtins (``abs``, ``compile``, ``max``,
``pow``, ``sum``): use them as ``gc.sum`` and so on.
"""
import builtins

from . import ops
from .autodiff import grad
from .check import GradientReport, check_gradients
from .codegen.compiled import Compiled, compile
from .derivatives import hessian, hvp, jacobian, jvp
from .errors import (DTypeError, FeedError, GradientError, GraphError, NameConflictError, OpError,
                     ShapeError, UnknownNodeError)
from .graph import Graph, Tensor
from .ops import *  # noqa: F401,F403 - the op functions are the public API
from .scan import scan
from .train import TrainingStep, compile_training

__version__ = "0.2.0"

__all__ = [name for name in sorted(
    ["Compiled", "DTypeError", "FeedError", "GradientError", "GradientReport", "Graph", "GraphError",
     "NameConflictError", "OpError", "ShapeError", "Tensor", "TrainingStep", "UnknownNodeError",
     "check_gradients", "compile", "compile_training", "grad", "hessian", "hvp", "jacobian", "jvp", "scan",
     *ops.__all__])
    if not hasattr(builtins, name)]
