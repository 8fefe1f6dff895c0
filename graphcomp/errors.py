"""The graphcomp exception hierarchy; imports nothing from graphcomp."""


class GraphError(Exception):
    """Base class of every error graphcomp raises on bad input."""


class ShapeError(GraphError, ValueError):
    """Shapes of an op's arguments do not fit together."""


class DTypeError(GraphError, TypeError):
    """An argument has a dtype the op cannot take."""


class NameConflictError(GraphError, ValueError):
    """A node name is already taken in the graph."""


class UnknownNodeError(GraphError, KeyError):
    """A node name does not exist in the graph."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class FeedError(GraphError, ValueError):
    """A value fed to compiled code is missing, unexpected or of the wrong shape or dtype."""


class GradientError(GraphError, ValueError):
    """A gradient was asked for that cannot be built."""


class OpError(GraphError, ValueError):
    """An op was given parameters it cannot take (bad axis, exponent, label dtype)."""


class TrainingError(GraphError, ValueError):
    """Training cannot go on as asked: bad optimizer settings, data or checkpoint, or a loss gone NaN/Inf."""


class CheckpointError(TrainingError):
    """A checkpoint file is unreadable or does not match the training step it is loaded for."""


class DivergenceError(TrainingError):
    """The loss became NaN or Inf during ``fit``; ``.epoch``, ``.step`` and ``.history`` say when."""


class GraphFileError(GraphError, ValueError):
    """A graph file cannot be read or is not valid; the message names the node and field at fault."""
