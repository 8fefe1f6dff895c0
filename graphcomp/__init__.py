"""graphcomp: declare a network as a graph, differentiate it, and compile it to NumPy code.

Public API only; see docs/api.md.
"""
from .autodiff import grad
from .check import GradientReport, check_gradients
from .codegen.compiled import Compiled, TrainingStep, compile, compile_training
from .errors import (DTypeError, FeedError, GradientError, GraphError, NameConflictError, OpError,
                     ShapeError, UnknownNodeError)
from .graph import Graph, Tensor
from .ops import *  # noqa: F401,F403 - the op functions are the public API
from .ops import __all__ as _ops

__all__ = ["Compiled", "DTypeError", "FeedError", "GradientError", "GradientReport", "Graph",
           "GraphError", "NameConflictError", "OpError", "ShapeError", "Tensor", "TrainingStep",
           "UnknownNodeError", "check_gradients", "compile", "compile_training", "grad", *_ops]
