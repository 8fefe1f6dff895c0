"""Checkpoints: params, optimizer state and history in one .npz, written atomically, checked on load;
imports errors, shapes and the training history.

Layout of the file (a plain ``.npz``, readable with ``np.load``, no pickles):
``graphcomp_checkpoint`` (the format version, 1), ``param:<name>``,
``state:<name>`` and ``history:<metric>`` (one value per epoch).
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from ..errors import CheckpointError
from ..files import atomic
from ..shapes import format_shape
from .history import History

FORMAT = 1
_KINDS = ("param", "state", "history")


def save_checkpoint(path, params: Mapping, state: Mapping | None = None, history: Mapping | None = None) -> str:
    """Write params, optimizer state and history to ``path`` (an ``.npz``), atomically.

    The file is written to a temporary file in the same directory, flushed to
    disk (fsync) and renamed over ``path``: a crash mid-save leaves the
    previous checkpoint whole, never a half-written one.

    Args:
        path: where to write (the name is used as given; no suffix is added).
        params: ``{name: array}``.
        state: the optimizer state ``{name: array}`` (``step.init_state``),
            or None for a step without one.
        history: a ``History`` or ``{metric: [value per epoch]}``, or None.

    Returns:
        The path written, as a str.

    Raises:
        CheckpointError: a value is not a NumPy array of numbers (or bools).
        OSError: the directory is missing or not writeable (nothing written).
    """
    arrays = {"graphcomp_checkpoint": np.array(FORMAT)}
    for kind, values in (("param", params), ("state", state or {})):
        if not isinstance(values, Mapping):
            raise CheckpointError(f"save_checkpoint: {kind}s must be a dict of name -> array, "
                                  f"got {type(values).__name__}")
        for name, value in values.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                shown = value.dtype.name if isinstance(value, np.ndarray) else type(value).__name__
                raise CheckpointError(f"save_checkpoint: {kind} {name!r} must be a NumPy array of numbers, "
                                      f"got {shown}")
            arrays[f"{kind}:{name}"] = value
    for name, column in History(history or {}).items():
        arrays[f"history:{name}"] = np.array(column, dtype=np.float64)
    path = os.fspath(path)
    with atomic(path, ".npz") as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path, step) -> tuple[dict, dict, History]:
    """Read a checkpoint written by ``save_checkpoint`` and check it against ``step``.

    Every param and state array the step needs must be there, with the
    param's shape and dtype, and nothing else may be; otherwise nothing is
    returned. Arrays are read with ``allow_pickle=False``: a checkpoint never
    runs code.

    Args:
        path: the ``.npz`` file.
        step: the compiled training step the checkpoint is for.

    Returns:
        ``(params, state, history)``: new writeable arrays in the step's order
        (``state`` is ``{}`` for a step without an optimizer) and a History.

    Raises:
        CheckpointError: the file is not a graphcomp checkpoint, or it does
            not match ``step`` (every mismatch is listed).
    """
    path = os.fspath(path)
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a graphcomp checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "graphcomp_checkpoint" not in npz.files:
                raise CheckpointError(f"{path}: not a graphcomp checkpoint (no 'graphcomp_checkpoint' entry)")
            version = npz["graphcomp_checkpoint"]
            if version.shape != () or int(version) != FORMAT:
                raise CheckpointError(f"{path}: checkpoint format {version} is not the format {FORMAT} "
                                      "this graphcomp reads")
            found = {kind: {} for kind in _KINDS}
            for key in npz.files:
                kind, sep, name = key.partition(":")
                if key == "graphcomp_checkpoint":
                    continue
                if not sep or kind not in found:
                    raise CheckpointError(f"{path}: unexpected entry {key!r} in a graphcomp checkpoint")
                found[kind][name] = npz[key]
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot read it as a graphcomp checkpoint ({e})") from None
    expected_state = {n: (tuple(shape), np.dtype(dtype)) for n, shape, dtype in getattr(step, "state_specs", ())}
    expected_params = {n: (step.graph.nx.nodes[n]["shape"], np.dtype(step.graph.nx.nodes[n]["dtype"]))
                       for n in step.params}
    problems = (_mismatches("param", found["param"], expected_params)
                + _mismatches("state", found["state"], expected_state))
    if problems:
        raise CheckpointError(f"{path} does not match the step of graph {step.graph.name!r}: " + "; ".join(problems))
    history = History({name: column.tolist() for name, column in found["history"].items()})
    return ({n: found["param"][n] for n in expected_params}, {n: found["state"][n] for n in expected_state},
            history)


def _mismatches(kind, arrays, expected):
    """What is wrong with ``arrays`` against ``{name: (shape, dtype)}``, one line each."""
    problems = [f"missing {kind} {n!r}" for n in expected if n not in arrays]
    problems += [f"unexpected {kind} {n!r}" for n in arrays if n not in expected]
    for n, (shape, dtype) in expected.items():
        if n not in arrays:
            continue
        got = arrays[n]
        if got.ndim != len(shape) or any(isinstance(d, int) and d != g for d, g in zip(shape, got.shape)):
            problems.append(f"{kind} {n!r} has shape {got.shape}, expected {format_shape(shape)}")
        if got.dtype != dtype:
            problems.append(f"{kind} {n!r} has dtype {got.dtype.name}, expected {dtype.name}")
    return problems
