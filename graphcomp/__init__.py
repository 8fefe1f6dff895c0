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
                     GraphFileError, NameConflictError, OpError, ShapeError, TrainingError, UnknownNodeError)
from .graph import Graph, Tensor
from .io import load_graph, save_graph
from .ops import *  # noqa: F401,F403 - the op functions are the public API
from .scan import scan
from .symbolic import FUNCTIONS as _ACTIVATIONS
from .symbolic import Formula, derivative, elementwise
from .train import (EarlyStopping, History, OptimizerStep, TrainingStep, compile_training, fit, init,
                    load_checkpoint, optim, save_checkpoint)
from .viz import RenderError, render, to_dot

__version__ = "0.3.0"

globals().update(_ACTIVATIONS)

__all__ = [name for name in sorted(
    ["CheckpointError", "Compiled", "DTypeError", "DivergenceError", "EarlyStopping", "FeedError", "Formula",
     "GradientError", "GradientReport", "Graph", "GraphError", "GraphFileError", "History", "NameConflictError",
     "OpError", "OptimizerStep", "RenderError", "ShapeError", "Tensor", "TrainingError", "TrainingStep",
     "UnknownNodeError", "check_gradients", "compile", "compile_training", "derivative", "elementwise", "fit", "grad",
     "hessian", "hvp", "init", "jacobian", "jvp", "load_checkpoint", "load_graph", "optim", "render",
     "save_checkpoint", "save_graph", "scan", "to_dot", *ops.__all__, *_ACTIVATIONS])
    if not hasattr(builtins, name)]
