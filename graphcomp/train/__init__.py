"""Training: compiled training steps, optimizers, initialization, fit, checkpoints and history, on top of
autodiff and codegen; imports both, never the reverse."""
from . import init, optim
from .checkpoint import load_checkpoint, save_checkpoint
from .fit import EarlyStopping, fit
from .history import History
from .optimized import OptimizerStep
from .step import TrainingStep, compile_training

__all__ = ["EarlyStopping", "History", "OptimizerStep", "TrainingStep", "compile_training", "fit", "init",
           "load_checkpoint", "optim", "save_checkpoint"]
