"""gc.init: seeded initial values for a training step's params, chosen by role; imports errors only.

A param's role is its rank: a weight has two or more dims, a bias (or any
other vector or scalar) fewer. Weights default to Glorot/Xavier uniform and
biases to zeros; ``overrides`` pick another scheme per param. Each param draws
from its own stream, spawned from ``seed`` in the step's param order, so the
same seed gives bit-identical params, and overriding one param leaves the
values of the others as they were.

Fans: a 2-D weight is ``(fan_in, fan_out)``, as ``x @ W`` uses it; a weight of
more dims is taken in PyTorch's convolution layout ``(out, in, *kernel)``:
``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import TrainingError

# the schemes that scale by the fans: name -> draw(rng, shape, fan_in, fan_out), in float64
SCHEMES = {
    "glorot_uniform": lambda rng, shape, fi, fo: rng.uniform(-1, 1, shape) * math.sqrt(6.0 / (fi + fo)),
    "glorot_normal": lambda rng, shape, fi, fo: rng.normal(0.0, math.sqrt(2.0 / (fi + fo)), shape),
    "he_uniform": lambda rng, shape, fi, fo: rng.uniform(-1, 1, shape) * math.sqrt(6.0 / fi),
    "he_normal": lambda rng, shape, fi, fo: rng.normal(0.0, math.sqrt(2.0 / fi), shape),
}
ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
           "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}


def initialize(step, seed: int = 0, *, weights: str = "glorot_uniform", biases: str | float = "zeros",
               overrides: dict | None = None) -> dict[str, np.ndarray]:
    """New arrays for every param of ``step``, drawn from a seeded generator.

    Args:
        step: a compiled training step (``compile_training``); its graph gives
            each param's shape and dtype.
        seed: the same seed gives bit-identical params.
        weights: the scheme of params with two or more dims: ``"glorot_uniform"``
            (default), ``"glorot_normal"``, ``"he_uniform"``, ``"he_normal"``
            (``xavier_*``/``kaiming_*`` are the same), ``"zeros"``, or a number
            (every entry that constant).
        biases: the scheme of params with fewer dims (default ``"zeros"``).
        overrides: ``{param name: scheme}`` for single params.

    Returns:
        ``{name: array}`` in the step's param order, each C-contiguous,
        writeable and of the param's dtype: ready for ``train_step``.

    Raises:
        TrainingError: an unknown scheme or param name, a Glorot/He scheme for
            a param of fewer than two dims, or a param with a free dim.

    Example:
        >>> params = gc.init.initialize(step, seed=0, overrides={"W1": "he_normal"})
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TrainingError(f"initialize: seed must be a non-negative int, got {seed!r}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(step.params))
    if unknown:
        raise TrainingError(f"initialize: overrides name {unknown[0]!r}, which is no param of the step "
                            f"(its params: {step.params})")
    streams = np.random.SeedSequence(seed).spawn(len(step.params))
    params = {}
    for name, stream in zip(step.params, streams, strict=True):
        attrs = step.graph.nx.nodes[name]
        shape, dtype = attrs["shape"], attrs["dtype"]
        if not all(isinstance(d, int) for d in shape):
            raise TrainingError(f"initialize: param {name!r} has a free dim; initialize it yourself")
        scheme = overrides.get(name, weights if len(shape) >= 2 else biases)
        params[name] = np.ascontiguousarray(_draw(name, scheme, shape, np.random.default_rng(stream)), dtype=dtype)
    return params


def _draw(name, scheme, shape, rng):
    """The values of param ``name`` under ``scheme``, in float64."""
    if isinstance(scheme, numbers.Real) and not isinstance(scheme, bool):
        return np.full(shape, float(scheme))
    if scheme == "zeros":
        return np.zeros(shape)
    key = ALIASES.get(scheme, scheme) if isinstance(scheme, str) else None
    if key not in SCHEMES:
        raise TrainingError(f"initialize: param {name!r}: unknown scheme {scheme!r}; expected a number, 'zeros' "
                            f"or one of {sorted(SCHEMES) + sorted(ALIASES)}")
    if len(shape) < 2:
        raise TrainingError(f"initialize: param {name!r} of shape {shape} has no fan-in and fan-out for "
                            f"{scheme!r}; use it for weights of two or more dims")
    receptive = math.prod(shape[2:])
    fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[1] * receptive, shape[0] * receptive)
    if fan_in == 0 or fan_out == 0:
        return np.zeros(shape)
    return SCHEMES[key](rng, shape, fan_in, fan_out)
