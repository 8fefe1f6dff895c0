"""Shapes with free dims, broadcasting and axis rules; imports only errors.

A dim is an ``int`` (static size) or a ``str`` (a free dim such as ``"batch"``,
bound when values are fed). ``None`` in a user-given shape becomes a fresh
anonymous free dim named ``"?k"``. Where shape inference has to assume that a
free dim equals another dim (broadcasting ``(None,)`` against ``(5,)``, a
matmul's inner dims), it records the pair with ``unified``; the graph keeps
them and fed values are checked against them.
"""
import contextlib
import contextvars

import numpy as np

from .errors import ShapeError


def is_free(dim):
    """True for a free (symbolic) dim."""
    return isinstance(dim, str)


def is_anonymous(dim):
    """True for a free dim that came from ``None``."""
    return isinstance(dim, str) and dim.startswith("?")


def normalize_shape(shape, what, anonymous):
    """Turn a user shape (ints, names, None) into a tuple of dims.

    ``anonymous()`` makes the dim that stands for a None.
    """
    if isinstance(shape, (int, str)) or shape is None:
        shape = (shape,)
    dims = []
    for dim in shape:
        if dim is None:
            dims.append(anonymous())
        elif isinstance(dim, str) and dim.isidentifier():
            dims.append(dim)
        elif isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0:
            dims.append(dim)
        else:
            raise ShapeError(f"{what}: bad dim {dim!r} in shape {tuple(shape)!r}; "
                             "expected a non-negative int, a name, or None")
    return tuple(dims)


def format_shape(shape):
    """Show a shape the way users wrote it: anonymous dims print as None."""
    dims = ["None" if is_anonymous(d) else repr(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


_UNIFIED = contextvars.ContextVar("unified", default=None)


@contextlib.contextmanager
def unifying():
    """Collect the ``(dim, dim)`` pairs that inference inside the block assumed equal."""
    found = []
    token = _UNIFIED.set(found)
    try:
        yield found
    finally:
        _UNIFIED.reset(token)


def unified(a, b):
    """Note that dims ``a`` and ``b`` must be equal at run time (at least one is free)."""
    found = _UNIFIED.get()
    if found is not None and a != b:
        found.append((a, b))


def dims_compatible(a, b):
    """Whether two dims may be equal at run time; assumes they are (see ``unified``)."""
    if a == b:
        return True
    if is_free(a) or is_free(b):
        unified(a, b)
        return True
    return False


def broadcast_dim(a, b):
    """The broadcast of two dims, or None when they cannot broadcast.

    A free dim against anything but 1 is taken to be equal to it: NumPy would
    also broadcast a free dim fed as 1, but the gradient would then have to be
    summed over a dim nobody knew was broadcast, so the assumption is recorded
    and checked when values are fed.
    """
    if a == b or b == 1:
        return a
    if a == 1:
        return b
    if is_free(a) or is_free(b):
        unified(a, b)
        # a static size, else a named dim, is kept: it is the more telling one
        if is_free(a) and (not is_free(b) or is_anonymous(a)):
            return b
        return a
    return None


def broadcast_shapes(*shapes, what=None):
    """NumPy broadcasting over shapes with free dims."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        dim = 1
        for s in shapes:
            k = i - (ndim - len(s))
            if k < 0:
                continue
            new = broadcast_dim(dim, s[k])
            if new is None:
                shown = " and ".join(format_shape(t) for t in shapes)
                raise ShapeError(f"{what + ': ' if what else ''}shapes {shown} do not broadcast "
                                 f"(dim {s[k]!r} against {dim!r})")
            dim = new
        out.append(dim)
    return tuple(out)


def is_int(value):
    """An int (Python's or NumPy's), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def normalize_axes(axis, ndim, ordered=False):
    """Turn ``axis`` (None, an int or ints, negatives allowed) into a tuple of axes.

    Sorted unless ``ordered`` (a permutation keeps its order).
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if is_int(axis) else axis
    if not isinstance(axes, (tuple, list)):
        raise ShapeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
    out = []
    for a in axes:
        if not is_int(a) or not -ndim <= a < ndim:
            raise ShapeError(f"axis {a!r} is out of range for {ndim}-d input")
        if int(a) % ndim in out:
            raise ShapeError(f"axis {a!r} is repeated in {axis!r}")
        out.append(int(a) % ndim)
    return tuple(out) if ordered else tuple(sorted(out))


def sum_to_axes(shape, target):
    """Axes to sum a broadcast result of ``shape`` over to get back ``target``.

    Returns ``(lead, keep)``: leading axes that broadcasting added (summed
    away) and axes where ``target`` has size 1 (summed with keepdims).
    """
    lead = tuple(range(len(shape) - len(target)))
    keep = tuple(i for i, (s, t) in enumerate(zip(shape[len(lead):], target))
                 if t == 1 and s != 1)
    return lead, keep
