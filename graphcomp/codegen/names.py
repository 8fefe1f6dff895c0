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
    One Namer names the locals of a function (or of functions sharing their
    names, like forward and train_step); Namers made for the same module
    (``module=``) share its globals, which no local may shadow.
    """

    def __init__(self, bound=None, reserved=(), module=None):
        """``bound`` gives some nodes a fixed identifier, even a reserved one (train_step's ``lr``);
        ``reserved`` are more names no node may take (the module's helper functions)."""
        self._names = dict(bound or {})
        self.reserved = frozenset(reserved)
        self._taken = set(RESERVED) | self.reserved | set(self._names.values())
        self._module = module._module if module is not None else {"globals": set(), "namers": []}
        self._module["namers"].append(self)
        self._temps = 0

    def __call__(self, node_name, temp=False):
        """The identifier of a node; a ``temp`` node (one grad named) gets the next free ``_t<k>``."""
        if node_name not in self._names:
            if temp:
                while f"_t{self._temps}" in self._taken or f"_t{self._temps}" in self._module["globals"]:
                    self._temps += 1
            self._names[node_name] = self.local(f"_t{self._temps}" if temp else identifier(node_name))
        return self._names[node_name]

    def global_for(self, node_name):
        """The identifier of a node whose value lives at module level (a hoisted constant)."""
        if node_name not in self._names:
            self._names[node_name] = self.global_(identifier(node_name))
        return self._names[node_name]

    def local(self, base):
        """A new identifier for this Namer's functions (a node's value, a loop index)."""
        name = self._fresh(base, lambda n: n in self._taken or n in self._module["globals"])
        self._taken.add(name)
        return name

    def global_(self, base):
        """A new module-level identifier (a loop body's function) that no local anywhere takes."""
        name = self._fresh(base, lambda n: n in self._module["globals"]
                           or any(n in namer._taken for namer in self._module["namers"]))
        self._module["globals"].add(name)
        return name

    @staticmethod
    def _fresh(base, taken):
        name, k = base, 1
        while taken(name):
            k += 1
            name = f"{base}_{k}"
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


def printable(text):
    """``text`` with every non-printable character (newlines, bidi controls, zero-widths) and the
    backslash written as its Python escape, so a name shown in a report or a picture reads as
    what it is: ``a\\nb`` (a newline) and ``a\\\\nb`` (a backslash) stay apart."""
    if text.isprintable() and "\\" not in text:      # the common case, checked in C
        return text
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
