"""What every compiled training module has besides its step: forward() and backward(); imports codegen.

Both ``TrainingStep`` (plain SGD) and ``OptimizerStep`` build on it.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..codegen.compiled import RUN_ERRORS, Feeds, Generated


class Passes(Generated):
    """A generated training module's forward and backward passes of its loss.

    Attributes: ``params`` and ``inputs``, the names of the params and the fed inputs, in order.
    """

    def __init__(self, graph, source, lines, params, data, bounds):
        super().__init__(graph, source, lines)
        self.params = params
        self.inputs = data
        self._forward = Feeds(graph, params + data, params=set(params), bounds=bounds)

    def forward(self, params: dict[str, np.ndarray], /, **feeds: ArrayLike) -> tuple:
        """Run the forward pass. Returns ``(loss, cache)``; pass the cache to ``backward``."""
        values = self._forward.values(feeds, params)
        try:
            return self.module.forward(*values)
        except RUN_ERRORS as e:
            raise self._forward.explain(feeds, params) or self.failed(e) or e from e

    def backward(self, cache: tuple) -> dict[str, np.ndarray]:
        """Gradients from a forward cache, as a dict param name -> new array."""
        try:
            return dict(zip(self.params, self.module.backward(cache), strict=True))
        except RUN_ERRORS as e:
            raise self.failed(e) or e from e
