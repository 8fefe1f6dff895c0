"""Pausing Python's cyclic garbage collector while graphcomp builds big graphs; imports only the standard library.

Building gradients and code allocates many small containers (node attribute
dicts, edge data) that live as long as the graph. CPython's full collections
then walk an ever larger heap, which made compile time grow faster than the
graph (benchmarks/bench_compile.py: 1,000 layers took ~6x the time of 200).
Nothing graphcomp builds is cyclic garbage, so the collector is paused
during a call and resumed (if it was on) afterwards.
"""
import contextlib
import functools
import gc


@contextlib.contextmanager
def paused():
    """The cyclic garbage collector is off inside the block, and as it was after it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def pausing(function):
    """Decorator: run ``function`` with the cyclic garbage collector paused."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with paused():
            return function(*args, **kwargs)
    return wrapper
