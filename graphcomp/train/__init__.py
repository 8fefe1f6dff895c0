"""Training: compiled training steps on top of autodiff and codegen; imports both, never the reverse."""
from . import init, optim
from .optimized import OptimizerStep
from .step import TrainingStep, compile_training

__all__ = ["OptimizerStep", "TrainingStep", "compile_training", "init", "optim"]
