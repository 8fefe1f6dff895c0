"""Training: compiled training steps on top of autodiff and codegen; imports both, never the reverse."""
from .step import TrainingStep, compile_training

__all__ = ["TrainingStep", "compile_training"]
