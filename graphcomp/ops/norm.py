"""Batch normalization and dropout, built from ops, and dropout's seeded mask; imports graph, op, codegen.ir.

State stays outside the graph: the running statistics of batch norm are
inputs, and in training mode ``batch_norm`` returns their updated values as
Tensors to compute alongside the loss; the caller feeds them back on the
next step (see docs/cnn_rnn.md). Dropout's randomness is an input too: a
mask, or an integer key from which the generated code draws the mask with
``np.random.default_rng(key)``, so the same key gives the same numbers.
"""
import numpy as np

from ..codegen.ir import Attr, BinOp, Call, Const, Name
from ..errors import DTypeError, ShapeError
from ..graph import F, Tensor
from ..op import Op, no_gradient, register


def batch_norm(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5, name=None):
    """Batch normalization over every axis but the channel axis 1 (as PyTorch's ``BatchNorm1d/2d``).

    Training: ``y = gamma * (x - m) / sqrt(v + eps) + beta`` with the batch's
    mean ``m`` and (biased) variance ``v``; the running statistics are
    updated as ``(1 - momentum) * running + momentum * batch`` (the running
    variance with the unbiased batch variance, as PyTorch). Inference: the
    same formula with the running statistics, which then get no update.

    Args:
        x: (n, channels) or (n, channels, ...) float input.
        gamma, beta: (channels,) scale and shift (params).
        running_mean, running_var: (channels,) running statistics (inputs fed each step).
        training: use (and update) batch statistics, or use the running ones.

    Returns:
        ``(y, updates)``: ``updates`` maps the name of ``running_mean`` and of
        ``running_var`` to the Tensor of its new value (training), or is empty
        (inference). Compile the updates with the loss and feed them back.

    Raises:
        ShapeError: a statistic or scale is not shaped (channels,).
    """
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ShapeError(f"batch_norm needs an (n, channels, ...) input, got {getattr(x, 'shape', x)!r}")
    channels = x.shape[1]
    for t in (gamma, beta, running_mean, running_var):
        if not isinstance(t, Tensor) or t.shape != (channels,):
            raise ShapeError(f"batch_norm: {getattr(t, 'name', t)!r} must be shaped ({channels},) like the channel "
                             f"axis of {x.name!r}, got {getattr(t, 'shape', None)}")
    axes = (0, *range(2, x.ndim))
    per_channel = (-1,) + (1,) * (x.ndim - 2)

    def column(t):
        return F.reshape(t, per_channel)
    if training:
        mean = F.mean(x, axes, keepdims=True)
        centered = x - mean
        var = F.mean(centered * centered, axes, keepdims=True)
        y = centered / F.sqrt(var + eps)
        count = F.count(x, axis=axes)
        batch_var = F.reshape(var, (channels,)) * count / (count - 1)
        updates = {running_mean.name: F.add((1 - momentum) * running_mean, momentum * F.reshape(mean, (channels,)),
                                            name=f"{running_mean.name}_new"),
                   running_var.name: F.add((1 - momentum) * running_var, momentum * batch_var,
                                           name=f"{running_var.name}_new")}
    else:
        y = (x - column(running_mean)) / F.sqrt(column(running_var) + eps)
        updates = {}
    return F.add(y * column(gamma), column(beta), name=name), updates


@register
class RandomMask(Op):
    """y = a bool array shaped like ``like``, True with probability ``1 - rate``, drawn from
    ``np.random.default_rng(key)`` (the same key gives the same mask); no gradient."""
    name = "random_mask"
    public = False
    vjp = no_gradient

    def normalize(self, key, like, *, rate):
        if not isinstance(rate, float) or not 0.0 <= rate < 1.0:
            raise ShapeError(f"dropout rate must be a float in [0, 1), got {rate!r}")
        return {"rate": rate}

    def infer(self, key, like, *, rate):
        if key.shape != () or np.dtype(key.dtype).kind not in "iu":
            raise DTypeError(f"the dropout key {key.name!r} must be an integer scalar, got {key.dtype} {key.shape}")
        return like.shape, "bool"

    def bounds(self, key, like, *, rate):
        return {0: (0, 2 ** 63, "a dropout key (seeds are non-negative)")}

    def emit(self, key, like, *, rate):
        rng = Call(Attr(Attr(Name("np"), "random"), "default_rng"), (Call(Name("int"), (key,)),))
        draw = Call(Attr(rng, "random"), (Attr(like, "shape"),))
        return BinOp(">=", draw, Const(rate))


def dropout(x, rate, *, mask=None, key=None, name=None):
    """Inverted dropout: ``x * mask / (1 - rate)``; at inference, simply don't call it.

    Give either ``mask`` (a bool or 0/1 Tensor shaped like x, e.g. an input you
    draw each step) or ``key`` (an integer scalar Tensor, e.g. an input fed
    the step number): the generated code then draws the mask itself with
    ``np.random.default_rng(key)``, so runs repeat exactly.

    Raises:
        ShapeError: neither or both of mask and key, or a rate outside [0, 1).
    """
    if (mask is None) == (key is None):
        raise ShapeError("dropout needs a mask or a key (an integer scalar input), and not both")
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ShapeError(f"dropout rate must be in [0, 1), got {rate!r}")
    if mask is None:
        mask = F.random_mask(key, x, rate=float(rate))
    scaled = x * (1.0 / (1.0 - rate))
    if np.dtype(mask.dtype).kind == "b":
        return F.where(mask, scaled, 0.0, name=name)
    return F.mul(scaled, mask, name=name)


PUBLIC = {"batch_norm": batch_norm, "dropout": dropout}
