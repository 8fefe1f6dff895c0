"""Prints code IR as Python source, with minimal parentheses; imports only codegen.ir."""
import math

from . import ir

# Python's operator precedence, higher binds tighter.
_BINARY = {"**": 16, "*": 13, "/": 13, "@": 13, "//": 13, "%": 13, "+": 12, "-": 12,
           "&": 9, "|": 8, ">": 7, "<": 7, ">=": 7, "<=": 7, "==": 7, "!=": 7, "is": 7,
           "is not": 7, "and": 4, "or": 3}
_UNARY = 14
_ATOM = 18


def comment_text(text):
    """Make any text safe inside a ``#`` comment: one line, printable characters only."""
    if text.isprintable():      # the common case, checked in C
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class NumpyPrinter:
    """Turns IR into source text; one ``_print_<Class>`` method per IR class.

    After printing a Module, ``lines`` maps the line number (1-based) of each
    statement that computes a graph node to that node's name.
    """

    indent = "    "

    def __init__(self):
        self.lines = {}

    def print(self, node):
        return getattr(self, f"_print_{type(node).__name__}")(node)

    def expr(self, node, context=0):
        """Print an expression, parenthesized if it binds looser than ``context``."""
        text = self.print(node)
        return f"({text})" if self.precedence(node) < context else text

    @staticmethod
    def precedence(node):
        if isinstance(node, ir.BinOp):
            return _BINARY[node.op]
        if isinstance(node, ir.UnOp):
            return _UNARY
        if isinstance(node, ir.Const) and isinstance(node.value, (int, float)) and node.value < 0:
            return _UNARY
        return _ATOM

    def _print_Name(self, node):
        return node.id

    def _print_Const(self, node):
        v = node.value
        if isinstance(v, float) and not math.isfinite(v):
            return "np.nan" if math.isnan(v) else ("np.inf" if v > 0 else "-np.inf")
        if isinstance(v, tuple):
            return self._print_Tuple(ir.Tuple(tuple(ir.Const(x) for x in v)))
        return repr(v)

    def _print_Attr(self, node):
        value = self.expr(node.value, _ATOM)
        if isinstance(node.value, ir.Const) and isinstance(node.value.value, (int, float)):
            value = f"({value})"       # 1.real is a syntax error; (1).real is not
        return f"{value}.{node.attr}"

    def _print_Call(self, node):
        args = [self.print(a) for a in node.args]
        args += [f"{k}={self.print(v)}" for k, v in node.kwargs]
        return f"{self.expr(node.func, _ATOM)}({', '.join(args)})"

    def _print_Index(self, node):
        index = node.index
        inner = (", ".join(self.print(i) for i in index.items)
                 if isinstance(index, ir.Tuple) and index.items else self.print(index))
        return f"{self.expr(node.value, _ATOM)}[{inner}]"

    def _print_Slice(self, node):
        parts = ["" if p is None else self.expr(p, _UNARY) for p in (node.start, node.stop, node.step)]
        return ":".join(parts[:2] if node.step is None else parts)

    def _print_Tuple(self, node):
        items = [self.print(i) for i in node.items]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

    def _print_Dict(self, node):
        items = "".join(f"\n{self.indent}{self.print(k)}: {self.print(v)}," for k, v in node.items)
        return f"{{{items}\n}}" if items else "{}"

    def _print_ListComp(self, node):
        return f"[{self.print(node.element)} for {node.var} in range({node.count})]"

    def _print_BinOp(self, node):
        p = _BINARY[node.op]
        if node.op == "**":        # right-associative, and binds tighter than unary minus on its left
            return f"{self.expr(node.left, p + 1)} ** {self.expr(node.right, _UNARY)}"
        # comparisons chain in Python, so both sides of one need parentheses at equal precedence
        right = p + 1
        left = p + 1 if p == 7 else p
        return f"{self.expr(node.left, left)} {node.op} {self.expr(node.right, right)}"

    def _print_UnOp(self, node):
        return f"{node.op}{self.expr(node.operand, _UNARY)}"

    def _target(self, target):
        if isinstance(target, ir.Tuple) and len(target.items) > 1:
            return ", ".join(self.print(t) for t in target.items)
        return self.print(target)

    def _print_Assign(self, node):
        line = f"{self._target(node.target)} = {self.print(node.value)}"
        return self._with_comment(line, node.comment)

    def _print_AugAssign(self, node):
        line = f"{self.print(node.target)} {node.op}= {self.print(node.value)}"
        return self._with_comment(line, node.comment)

    @staticmethod
    def _with_comment(line, comment):
        return f"# {comment_text(comment)}\n{line}" if comment else line

    def _print_Return(self, node):
        value = node.value
        if isinstance(value, ir.Tuple) and len(value.items) > 1:
            return f"return {', '.join(self.print(i) for i in value.items)}"
        return f"return {self.print(value)}"

    def _print_For(self, node):
        return self._block(f"for {node.var} in range({', '.join(self.print(b) for b in node.bounds)}):", node.body)

    def _print_If(self, node):
        return self._block(f"if {self.print(node.test)}:", node.body)

    def _block(self, head, body):
        lines = [head]
        for stmt in body:
            lines += [self.indent + line for line in self.print(stmt).split("\n")]
        return "\n".join(lines)

    def _print_Del(self, node):
        return f"del {', '.join(self.print(n) for n in node.names)}"

    def _print_Raise(self, node):
        return f"raise {self.print(node.value)}"

    def _print_Comment(self, node):
        return f"# {comment_text(node.text)}"

    def _print_FunctionDef(self, node):
        lines = [f"def {node.name}({', '.join(node.params)}):"]
        if node.doc:
            lines += self._docstring(node.doc, self.indent).split("\n")
        self._nodes = {}      # line index within this function -> node
        for stmt in node.body:
            lines += [self.indent + line for line in self.print(stmt).split("\n")]
            if getattr(stmt, "node", ""):
                self._nodes[len(lines) - 1] = stmt.node
        return "\n".join(lines)

    @staticmethod
    def _docstring(text, indent):
        body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        body = comment_text(body) if "\n" not in body else "\n".join(
            comment_text(line) for line in body.split("\n"))
        lines = body.split("\n")
        if len(lines) == 1:
            return f'{indent}"""{lines[0]}"""'
        return "\n".join([f'{indent}"""{lines[0]}'] + [indent + ln if ln else "" for ln in lines[1:]]
                         + [f'{indent}"""'])

    def _print_Module(self, node):
        parts = [self._docstring(node.doc, "") + "\n\n" + "\n".join(f"import {m}" for m in node.imports)]
        line = parts[0].count("\n") + 1      # the line number where the last part ends
        self.lines = {}
        for item in node.body:
            self._nodes = {}
            part = item.strip("\n") if isinstance(item, str) else self.print(item)
            gap = "\n\n\n" if part.startswith(("def ", "@")) else "\n\n"
            parts.append(gap + part)
            self.lines.update((line + len(gap) + i, n) for i, n in self._nodes.items())
            line += len(gap) + part.count("\n")
        return "".join(parts) + "\n"
