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
from .errors import (CheckpointError, DivergenceError, DTypeError, FeedError, GradientError, GraphError,
                     NameConflictError, OpError, ShapeError, TrainingError, UnknownNodeError)
from .graph import Graph, Tensor
from .ops import *  # noqa: F401,F403 - the op functions are the public API
from .train import (EarlyStopping, History, OptimizerStep, TrainingStep, compile_training, fit, init,
                    load_checkpoint, optim, save_checkpoint)

__version__ = "0.2.0"

__all__ = [name for name in sorted(
    ["CheckpointError", "Compiled", "DivergenceError", "DTypeError", "EarlyStopping", "FeedError", "GradientError",
     "GradientReport", "Graph", "GraphError", "History", "NameConflictError", "OpError", "OptimizerStep",
     "ShapeError", "Tensor", "TrainingError", "TrainingStep", "UnknownNodeError", "fit", "init", "load_checkpoint",
     "optim", "save_checkpoint",
     "check_gradients", "compile", "compile_training", "grad", "hessian", "hvp", "jacobian", "jvp",
     *ops.__all__])
    if not hasattr(builtins, name)]
