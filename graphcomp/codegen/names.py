"""Safe, unique, stable Python identifiers for node names; imports only the standard library."""
import builtins
import keyword
import re

# Names generated code uses for itself, so no node may take them.
RESERVED = (frozenset({"np", "params", "lr", "cache", "run", "forward", "backward", "train_step",
                       "PARAMS", "INPUTS", "OUTPUTS"}) | frozenset(dir(builtins)))


class Namer:
    """Gives each node name one identifier, the same every time for the same graph.

    ``W1`` stays ``W1``; ``"hidden layer"`` becomes ``hidden_layer``;
    ``"__import__('os')"`` becomes ``__import____os__``; clashes get ``_2``, ``_3``.
    """

    def __init__(self, bound=None, reserved=()):
        """``bound`` gives some nodes a fixed identifier, even a reserved one (train_step's ``lr``);
        ``reserved`` are more names no node may take (the module's helper functions)."""
        self._names = dict(bound or {})
        self._taken = set(RESERVED) | set(reserved) | set(self._names.values())

    def __call__(self, node_name):
        if node_name not in self._names:
            self._names[node_name] = self._fresh(identifier(node_name))
        return self._names[node_name]

    def _fresh(self, base):
        name, k = base, 1
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name


def identifier(text):
    """An ASCII identifier that reads like ``text`` and is no keyword or builtin."""
    name = re.sub(r"\W", "_", text, flags=re.ASCII)
    if not name or name[0].isdigit():
        name = f"n_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in RESERVED:
        name += "_"
    return name


def display(node_name):
    """A node name as comments show it: bare if it is an identifier, else quoted."""
    return node_name if node_name.isidentifier() and node_name.isascii() else repr(node_name)
