"""sympy side of graphcomp: element-wise ops from expressions and the activations built on them,
derivative formulas; imports graph, op, autodiff and codegen.ir.

``FUNCTIONS`` are the public functions of the activations defined here.
"""
from ..graph import op_function
from ..op import OPS
from . import activations
from .expression import Expression, elementwise
from .formula import Chain, Formula, derivative

FUNCTIONS = {name: op_function(OPS[name]) for name, *_ in activations.ACTIVATIONS}

__all__ = ["Chain", "Expression", "Formula", "derivative", "elementwise"]
