"""The op table: importing this package registers every op and makes its public function; imports the op families.

Each registered op with ``public = True`` is a function of this module
(``ops.tanh``, ``gc.tanh``) made from its class by ``graph.op_function``.
"""
from ..graph import op_function
from ..op import OPS
from . import elementwise, index, leaves, linalg, nn, reduce  # noqa: F401 - registers the ops

FUNCTIONS = {name: op_function(op) for name, op in sorted(OPS.items()) if op.public}
globals().update(FUNCTIONS)
__all__ = sorted(FUNCTIONS)
