"""The op table: importing this package registers every op and makes its public function; imports the op families.

Each registered op with ``public = True`` is a function of this module
(``ops.tanh``, ``gc.tanh``) made from its class by ``graph.op_function``;
``WRITTEN`` adds the functions written by hand (``concatenate`` takes a list,
``split`` gives several Tensors, ``conv1d`` is built from ``conv2d``).
"""
from ..graph import op_function
from ..op import OPS
from . import cells, conv, elementwise, index, leaves, linalg, nn, norm, reduce, structure  # noqa: F401 - registers the ops

# ops whose public function is written by hand (a list of tensors, several outputs, a composition of ops)
WRITTEN = structure.PUBLIC | conv.PUBLIC | cells.PUBLIC | norm.PUBLIC
FUNCTIONS = {name: op_function(op) for name, op in sorted(OPS.items()) if op.public} | WRITTEN
globals().update(FUNCTIONS)
__all__ = sorted(FUNCTIONS)
