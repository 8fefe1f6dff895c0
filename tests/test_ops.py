"""Every registered op: forward value against NumPy, VJP against central differences (float64), float32 kept.

One table (``CASES``) holds the differentiable ops, one (``NO_GRADIENT_CASES``)
the ops without a gradient and the leaves. Every row is built into a graph,
compiled, and run through the generated code.
"""
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import graphcomp as gc
import naive
from graphcomp.codegen.ir import Name
from graphcomp.codegen.printer import NumpyPrinter
from graphcomp.graph import apply
from graphcomp.op import OPS

DT = "<graph dtype>"            # a dtype param that takes the graph's dtype
SIZES = {"n": 3, "m": 2}        # values of the free dims used in shapes
SIGNED = "signed"               # |x| in [0.25, 2] with a random sign: away from the kinks at 0

RTOL, ATOL = 1e-6, 1e-7         # element-wise rule of check_gradients
MAX_REL = 1e-6                  # norm-wise relative error of every gradient (float64)


@dataclass(frozen=True)
class Arg:
    """One argument of a case: a float param (checked), a float input, int labels or a bool mask."""

    shape: tuple
    kind: str = "f"             # "f" param, "x" float input, "i" int64 labels in [0, high), "b" bool
    high: int = 0
    domain: object = None       # (lo, hi) or SIGNED; None takes the case's domain


def F(*shape, domain=None):
    return Arg(shape, "f", domain=domain)


def X(*shape):
    return Arg(shape, "x")


def Labels(*shape, high):
    return Arg(shape, "i", high)


def Mask(*shape):
    return Arg(shape, "b")


@dataclass(frozen=True)
class Case:
    """``op(*args, **params)``; ``build(g, args, **params)`` replaces the plain ``apply``."""

    op: str
    args: list
    params: dict = field(default_factory=dict)
    domain: object = SIGNED
    ref: object = None          # NumPy reference (*arrays, **params); default REF[op]
    build: object = None
    label: str = ""

    def __post_init__(self):
        args = [a if isinstance(a, Arg) else Arg(tuple(a)) for a in self.args]
        object.__setattr__(self, "args", args)

    def __str__(self):
        shapes = "x".join("(" + ",".join(map(str, a.shape)) + ")" + {"f": "", "x": "in", "i": "int",
                                                                     "b": "bool"}[a.kind]
                          for a in self.args)
        extra = ",".join(f"{k}={v}" for k, v in self.params.items() if v is not DT)
        return "-".join(p for p in (self.op, self.label, shapes, extra) if p).replace(" ", "")


# ---- NumPy references ------------------------------------------------------------------------

def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return np.log(np_softmax(x, axis))


def np_nll(logp, labels, reduction="mean"):
    picked = -logp[np.arange(labels.shape[0]), labels]
    return picked.mean() if reduction == "mean" else picked.sum()


def np_dtype(dtype, like):
    return like.dtype if dtype is DT else np.dtype(dtype)


REF = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "neg": np.negative,
    "pow": lambda x, exponent: np.power(x, exponent),
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    # the activations defined in sympy (symbolic/activations.py), written independently here
    "softplus": lambda x: np.log1p(np.exp(x)), "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)), "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
    "selu": lambda x, alpha=1.6732632423543772, scale=1.0507009873554805:
        scale * np.where(x > 0, x, alpha * (np.exp(x) - 1)),
    "leaky_relu": lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
    "gelu": lambda x: x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))) / 2,
    "gelu_tanh": lambda x: x / 2 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "log1p": np.log1p, "expm1": np.expm1, "sin": np.sin, "cos": np.cos,
    "abs": np.abs, "sign": np.sign, "relu": lambda x: np.maximum(x, 0.0),
    "maximum": np.maximum, "minimum": np.minimum,
    "greater": np.greater, "less": np.less, "equal": np.equal, "where": np.where,
    "cast": lambda x, dtype: x.astype(np_dtype(dtype, x)),
    "matmul": np.matmul,
    "transpose": lambda x, axes=None: np.transpose(x, axes),
    "reshape": lambda x, shape: np.reshape(x, shape),
    "reshape_like": lambda x, like: np.reshape(x, like.shape),
    "broadcast_like": lambda x, like: np.broadcast_to(x, like.shape),
    "expand_dims": lambda x, axis: np.expand_dims(x, axis),
    "squeeze": lambda x, axis: np.squeeze(x, axis),
    "sum": lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    "max": lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
    "count": lambda x, axis: math.prod(x.shape[a] for a in axis),
    "softmax": np_softmax, "log_softmax": np_log_softmax,
    "nll_loss": np_nll,
    "cross_entropy": lambda z, labels, reduction="mean": np_nll(np_log_softmax(z, 1), labels, reduction),
    "mse_loss": lambda p, t: np.mean((p - t) ** 2),
    "nll_grad": lambda labels, scale, depth, dtype: -np.eye(depth)[labels] * scale,
    "softmax_nll_grad": lambda logp, labels, scale:
        (np.exp(logp) - np.eye(logp.shape[1])[labels]) * scale,
    "one_hot": lambda labels, depth, dtype="float64": np.eye(depth)[labels].astype(
        np_dtype(dtype, np.zeros(0))),
    "zeros_like": np.zeros_like,
    "broadcast_to": lambda x, shape: np.broadcast_to(x, shape),
    "row": lambda x, i: x[i],
    "unrow": lambda x, i, like: np.where(np.arange(like.shape[0]).reshape((-1,) + (1,) * x.ndim) == i, x, 0.0),
    "unit": lambda i, shape, dtype: np.eye(1, int(np.prod(shape)), int(i), dtype=dtype).reshape(shape),
    "input": lambda x: x, "param": lambda x: x,
}

# ---- the tables --------------------------------------------------------------------------------

def sliced(label, index):
    return Case("slice", [(4, 5, 6)], label=f"x[{label}]", build=lambda g, a: a[0][index], ref=lambda x: x[index])


def unslice_ref(x, like, index):
    out = np.zeros(like.shape)
    out[tuple(slice(*i) if isinstance(i, tuple) else i for i in index)] = x
    return out


def untake_ref(x, indices, like, axis):
    out = np.zeros(like.shape)
    moved = np.moveaxis(out, axis, 0)
    for k, i in enumerate(np.ravel(indices)):      # a loop: repeated indices accumulate
        moved[i] += np.moveaxis(x, axis, 0).reshape((-1,) + moved.shape[1:])[k]
    return out


def parts_of(op):
    """A several-output node read through its parts, weighted so each output matters."""
    def build(g, a, **params):
        node = apply(op, a, params)
        return gc.stack([gc.sum(p * (k + 1.5)) for k, p in enumerate(gc.ops.structure.parts(node))])
    return build


STRUCTURE_CASES = [
    *(sliced(label, index) for label, index in (
        ("1:3", np.s_[1:3]), (":,1:5", np.s_[:, 1:5]), ("...,::2", np.s_[..., ::2]), ("0", np.s_[0]),
        ("-1,2:,::-2", np.s_[-1, 2:, ::-2]), ("1:3,...,4", np.s_[1:3, ..., 4]), (":,3:1", np.s_[:, 3:1]))),
    Case("slice", [("n", 5)], label="x[:,1:]", build=lambda g, a: a[0][:, 1:], ref=lambda x: x[:, 1:]),
    # a new free dim (the rows left of a free dim) is summed away: the loss weights need static dims
    Case("slice", [("n", 5)], label="x[1:]", build=lambda g, a: gc.sum(a[0][1:] ** 3, 0),
         ref=lambda x: np.sum(x[1:] ** 3, 0)),
    Case("unslice", [(2, 3), X(4, 5)], params=dict(index=((1, 3, None), (0, 5, 2)))),
    Case("unslice", [(5,), X(3, 5)], params=dict(index=(1,))),
    *(Case("concatenate", shapes, label=f"axis={axis}", build=lambda g, a, axis=axis: gc.concatenate(a, axis),
           ref=lambda *xs, axis=axis: np.concatenate(xs, axis))
      for shapes, axis in (([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 3)], -1),
                           ([("n", 3), ("n", 2)], 1))),
    Case("concatenate", [("n", 3), ("m", 3)], label="free", build=lambda g, a: gc.sum(gc.concatenate(a) ** 3, 0),
         ref=lambda x, y: np.sum(np.concatenate([x, y]) ** 3, 0)),
    Case("split_like", [(5, 3), X(2, 3), X(3, 3)], params=dict(axis=0), build=parts_of("split_like"),
         ref=lambda x, a, b, axis: np.stack([np.sum(x[:2]) * 1.5, np.sum(x[2:]) * 2.5])),
    Case("split", [(4, 6)], params=dict(sections=3, axis=1), build=parts_of("split"),
         ref=lambda x, sections, axis: np.stack([np.sum(p) * (k + 1.5) for k, p in enumerate(np.split(x, 3, 1))])),
    Case("split", [("n", 6)], params=dict(sections=(1, 4), axis=-1), build=parts_of("split"),
         ref=lambda x, sections, axis: np.stack([np.sum(p) * (k + 1.5) for k, p in enumerate(np.split(x, (1, 4), 1))])),
    Case("part", [(4, 6)], label="a1*a2", build=lambda g, a: gc.split(a[0], 2, axis=1)[0] * gc.split(a[0], 2, axis=1)[1],
         ref=lambda x: x[:, :3] * x[:, 3:]),
    *(Case("stack", shapes, label=f"axis={axis}", build=lambda g, a, axis=axis: gc.stack(a, axis),
           ref=lambda *xs, axis=axis: np.stack(xs, axis))
      for shapes, axis in (([(2, 3), (2, 3)], 0), ([(2, 3), (2, 3), (2, 3)], 2), ([("n", 3), ("n", 3)], 1))),
    Case("take", [(5, 3), Labels(4, high=5)]),
    Case("take", [(5, 3), Labels(2, 6, high=5)], label="repeated", ref=lambda t, i: np.take(t, i, axis=0)),
    Case("take", [(2, 5, 3), Labels(4, high=3)], params=dict(axis=-1)),
    Case("take", [("n", 5), Labels(7, high=5)], params=dict(axis=1)),
    Case("untake", [(4, 3), Labels(4, high=5), X(5, 3)], params=dict(axis=0)),
    Case("untake", [(2, 7), Labels(7, high=3), X(2, 3)], params=dict(axis=1)),
    Case("pad", [(3, 4)], params=dict(pad_width=((0, 0), (1, 2)))),
    Case("pad", [(2, 3, 4)], params=dict(pad_width=1, value=0.5)),
    Case("pad", [("n", 4)], label="free", build=lambda g, a: gc.sum(gc.pad(a[0], ((1, 0), (0, 3))) ** 3, 0),
         ref=lambda x: np.sum(np.pad(x, ((1, 0), (0, 3))) ** 3, 0)),
    Case("clip", [(3, 4)], params=dict(low=-1.0, high=1.0)),
    Case("clip", [(3, 4)], params=dict(low=0.5)),
    Case("clip", [("n", 4)], params=dict(high=-0.3)),
]
P0, P1 = ((0, 0), (0, 0)), ((1, 1), (1, 1))
CONV = [  # (x shape, w shape, stride, padding, dilation, groups), params as conv2d normalizes them
    ((2, 3, 5, 5), (4, 3, 3, 3), (1, 1), P0, (1, 1), 1),
    ((2, 4, 6, 5), (6, 2, 2, 3), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    (("n", 2, 5, 4), (2, 1, 3, 3), (2, 2), P1, (1, 1), 2),
    ((2, 3, 4, 4), (5, 3, 1, 1), (1, 1), P0, (1, 1), 1),     # 1x1: the columns hold x's own numbers
]


def window_params(stride, padding, dilation):
    return dict(stride=stride, padding=padding, dilation=dilation)


def conv_params(stride, padding, dilation, groups):
    return dict(window_params(stride, padding, dilation), groups=groups)


def kernel_matrix(w, groups, extra):
    """The shape of conv2d's kernel matrix for a kernel shaped w (with the bias column)."""
    return (groups, w[0] // groups, w[1] * w[2] * w[3] + extra)


def conv_ct(x, w, stride, padding, dilation, groups):
    """The shape of the cotangent of conv2d's kernel-matrix product."""
    oh, ow = naive.out_size(x, w[2:], stride, padding, dilation)
    return (x[0], groups, w[0] // groups, oh * ow)


def columns(x, w, stride, padding, dilation, groups, extra):
    """The shape of im2col(x) for a conv of x with w (with an extra row)."""
    oh, ow = naive.out_size(x, w[2:], stride, padding, dilation)
    return (x[0], groups, x[1] // groups * w[2] * w[3] + extra, oh * ow)


POOLS = [((2, 3, 4, 4), dict(kernel=(2, 2), stride=(2, 2), padding=P0)),
         ((2, 2, 5, 5), dict(kernel=(3, 3), stride=(2, 2), padding=P1)),
         (("n", 2, 4, 5), dict(kernel=(2, 3), stride=(1, 2), padding=((1, 1), (0, 0))))]

CONV_CASES = [
    *(Case("im2col", [x], params=dict(kernel=w[2:], **conv_params(*rest), extra=extra))
      for x, w, *rest in CONV for extra in (None, 1.0)),
    *(Case("col2im", [columns(x, w, *rest, extra)], params=dict(size=x[2:], kernel=w[2:], **window_params(*rest[:3]),
                                                                  extra=extra))
      for x, w, *rest in CONV for extra in (False, True)),
    *(Case("conv2d_transpose", [kernel_matrix(w, rest[-1], extra), conv_ct(x, w, *rest)],
           params=dict(size=x[2:], kernel=w[2:], **window_params(*rest[:3]), extra=extra))
      for x, w, *rest in CONV for extra in (False, True)),
    *(Case(op, [x], params=p) for op in ("max_pool2d", "avg_pool2d") for x, p in POOLS),
    *(Case(op, [x[:2] + naive.out_size(x, p["kernel"], p["stride"], p["padding"]), X(*x)], params=p)
      for op in ("max_pool2d_grad", "avg_pool2d_grad") for x, p in POOLS),
    *(Case("max_pool2d_pick", [x, X(*x)], params=p) for x, p in POOLS),
]

REF.update({
    "im2col": naive.im2col, "col2im": naive.col2im, "max_pool2d": naive.max_pool2d,
    "conv2d_transpose": lambda K, ct, extra=False, **p: naive.col2im(np.swapaxes(K, 1, 2) @ ct, extra=extra, **p),
    "avg_pool2d": naive.avg_pool2d, "max_pool2d_grad": naive.max_pool2d_grad,
    "max_pool2d_pick": naive.max_pool2d_pick, "avg_pool2d_grad": naive.avg_pool2d_grad,
    "unslice": unslice_ref, "untake": untake_ref,
    "take": lambda t, i, axis=0: np.take(t, i, axis=axis),
    "pad": lambda x, pad_width, value=0.0: np.pad(x, pad_width, constant_values=value),
    "clip": lambda x, low=None, high=None: np.clip(x, low, high),
})


BROADCASTS = [[(3, 4), (3, 4)], [(3, 4), (4,)], [(4,), (3, 4)], [(3, 1), (1, 4)], [(), (2, 3)],
              [(2, 3, 4), (3, 1)], [("n", 4), (4,)]]
UNARY_SHAPES = [(3, 4), (), (2, 1, 3)]
POSITIVE = (0.5, 3.0)

CASES = [
    *(Case(op, shapes) for op in ("add", "sub", "mul", "div", "maximum", "minimum")
      for shapes in BROADCASTS),
    *(Case(op, [shape]) for op in ("neg", "exp", "tanh", "sigmoid", "abs", "relu")
      for shape in UNARY_SHAPES),
    *(Case(op, [shape], domain=POSITIVE) for op in ("log", "sqrt") for shape in UNARY_SHAPES),
    Case("exp", [("n", 4)]),
    *(Case(op, [(3, 4)]) for op in ("softplus", "log_sigmoid", "silu", "mish", "elu", "selu", "leaky_relu",
                                    "gelu", "gelu_tanh", "expm1", "sin", "cos")),
    Case("log1p", [(3, 4)], domain=POSITIVE),
    Case("elu", [(3, 4)], params=dict(alpha=0.5)),
    Case("leaky_relu", [(2, 3)], params=dict(negative_slope=0.2)),
    # the same node twice, and Python scalars on either side (weakly typed constants)
    Case("mul", [(3, 4)], label="x*x", build=lambda g, a: a[0] * a[0], ref=lambda x: x * x),
    Case("add", [(3, 4)], label="x+x", build=lambda g, a: a[0] + a[0], ref=lambda x: x + x),
    Case("sub", [(3, 4)], label="x-x*x", build=lambda g, a: a[0] - a[0] * a[0], ref=lambda x: x - x * x),
    Case("div", [(3, 4)], label="x/x", build=lambda g, a: a[0] / a[0], ref=lambda x: x / x),
    Case("mul", [(3, 4)], label="2.5*x", build=lambda g, a: 2.5 * a[0], ref=lambda x: 2.5 * x),
    Case("sub", [(3, 4)], label="2.5-x", build=lambda g, a: 2.5 - a[0], ref=lambda x: 2.5 - x),
    Case("div", [(3, 4)], label="1/x", build=lambda g, a: 1 / a[0], ref=lambda x: 1 / x),
    Case("div", [(3, 4)], label="x/4", build=lambda g, a: a[0] / 4, ref=lambda x: x / 4),
    Case("add", [(3, 4)], label="x+1", build=lambda g, a: a[0] + 1, ref=lambda x: x + 1),
    Case("maximum", [(3, 4)], label="maximum(x,0.5)", build=lambda g, a: gc.maximum(a[0], 0.5),
         ref=lambda x: np.maximum(x, 0.5)),
    Case("minimum", [(3, 4)], label="minimum(-0.1,x)", build=lambda g, a: gc.minimum(-0.1, a[0]),
         ref=lambda x: np.minimum(-0.1, x)),
    *(Case("pow", [(3, 4)], params=dict(exponent=p)) for p in (2, 3, -1, -2, 0, 2.0)),
    *(Case("pow", [(3, 4)], params=dict(exponent=p), domain=POSITIVE) for p in (0.5, -0.5, 1.5)),
    Case("pow", [()], params=dict(exponent=3)),
    Case("pow", [(3, 4)], label="x**2", build=lambda g, a: a[0] ** 2, ref=lambda x: x ** 2),
    Case("where", [Mask(3, 4), (3, 4), (3, 4)]),
    Case("where", [Mask(3, 1), (1, 4), ()]),
    Case("where", [Mask(4), (3, 4), (4,)]),
    Case("where", [Mask(3, 4), (), ()]),
    Case("where", [Mask(3, 4), (3, 4)], label="where(c,x,0.0)",
         build=lambda g, a: gc.where(a[0], a[1], 0.0), ref=lambda c, x: np.where(c, x, 0.0)),
    Case("cast", [(3, 4)], params=dict(dtype=DT)),
    Case("matmul", [(3, 4), (4, 5)]),
    Case("matmul", [("n", 4), (3, 4, 5)]),          # a shared by every batch entry, its rows free
    Case("matmul", [(2, 4), (3, 4, 5)]),            # a shared, b's rows outnumbering ct's
    Case("matmul", [(1, 4), (4, 1)]),
    Case("matmul", [(2, 3, 4), (2, 4, 5)]),
    Case("matmul", [(2, 3, 4), (4, 5)]),
    Case("matmul", [(3, 4), (2, 4, 5)]),
    Case("matmul", [(2, 1, 3, 4), (5, 4, 2)]),
    Case("matmul", [("n", 4), (4, 2)]),
    Case("matmul", [(3, 4)], label="x@x.T", build=lambda g, a: a[0] @ a[0].T, ref=lambda x: x @ x.T),
    Case("transpose", [(3, 4)], params=dict(axes=None)),
    Case("transpose", [(2, 3, 4)], params=dict(axes=None)),
    Case("transpose", [(2, 3, 4)], params=dict(axes=(1, 0, 2))),
    Case("transpose", [(2, 3, 4)], params=dict(axes=(-1, 0, 1))),
    Case("transpose", [(2, 3, 4)], params=dict(axes=(2, 0, 1))),
    Case("transpose", [("n", 4)], params=dict(axes=None)),
    Case("reshape", [(3, 4)], params=dict(shape=12)),
    Case("reshape", [(3, 4)], params=dict(shape=(2, -1))),
    Case("reshape", [(2, 3, 4)], params=dict(shape=(4, -1, 2))),
    Case("reshape", [(6,)], params=dict(shape=(2, 3))),
    Case("reshape", [(1, 1)], params=dict(shape=())),
    Case("reshape", [()], params=dict(shape=(1, 1))),
    Case("reshape", [("n", 2, 3)], params=dict(shape=(-1, 6))),
    Case("reshape_like", [(3, 4), X(2, 6)]),
    Case("reshape_like", [(2, 3, 4), X(24)]),
    Case("reshape_like", [(6,), X("m", 3)]),
    Case("broadcast_like", [(1, 4), X(3, 4)]),
    Case("broadcast_like", [(4,), X(2, 3, 4)]),
    Case("broadcast_like", [(), X(2, 3)]),
    Case("broadcast_like", [(3, 1), X(3, 4)]),
    Case("broadcast_like", [(3, 4), X(3, 4)]),
    Case("broadcast_to", [(1, 4)], params=dict(shape=(3, 4))),
    Case("broadcast_to", [()], params=dict(shape=(2, 3))),
    Case("broadcast_to", [(4,)], params=dict(shape=(2, 3, 4))),
    Case("row", [(3, 4), Labels(high=3)]),
    Case("row", [(2, 3, 4), Labels(high=2)]),
    Case("unrow", [(4,), Labels(high=3), X(3, 4)]),
    Case("map", [(3,)], label="jacobian(tanh)", build=lambda g, a: gc.jacobian(gc.tanh(a[0]), a[0]),
         ref=lambda x: np.diag(1 - np.tanh(x) ** 2)),
    Case("map", [(3,)], label="hessian(sum(tanh**3))", build=lambda g, a: gc.hessian(gc.sum(gc.tanh(a[0]) ** 3), a[0]),
         ref=lambda x: np.diag(6 * np.tanh(x) * (1 - np.tanh(x) ** 2) * (1 - 2 * np.tanh(x) ** 2))),
    Case("map", [(2, 3), (3,)], label="jacobian(x@w,x)", build=lambda g, a: gc.jacobian(gc.tanh(a[0] @ a[1]), a[0]),
         ref=lambda x, w: np.einsum("i,ia,b->iab", 1 - np.tanh(x @ w) ** 2, np.eye(2), w)),
    Case("expand_dims", [(3, 4)], params=dict(axis=0)),
    Case("expand_dims", [(3, 4)], params=dict(axis=-1)),
    Case("expand_dims", [(3, 4)], params=dict(axis=(0, 2))),
    Case("expand_dims", [()], params=dict(axis=0)),
    Case("squeeze", [(3, 1, 4)], params=dict(axis=1)),
    Case("squeeze", [(1, 3, 1)], params=dict(axis=(0, -1))),
    Case("squeeze", [(1,)], params=dict(axis=0)),
    *(Case(op, [(2, 3, 4)], params=dict(axis=axis, keepdims=keep))
      for op in ("sum", "mean", "max")
      for axis in (None, 1, -1, (0, 2)) for keep in (False, True)),
    *(Case(op, [shape]) for op in ("sum", "mean", "max") for shape in ((3, 4), (), ("n", 4))),
    *(Case(op, [("n", 4)], params=dict(axis=0)) for op in ("sum", "mean", "max")),
    *(Case(op, [(3, 4)], params=dict(axis=())) for op in ("sum", "mean", "max")),
    *(Case(op, [shape], params=dict(axis=axis)) for op in ("softmax", "log_softmax")
      for shape, axis in (((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((5,), 0), (("n", 4), 0))),
    Case("softmax", [(3, 4)]),
    Case("log_softmax", [(3, 4)]),
    *(Case(op, [(4, 5), Labels(4, high=5)], params=dict(reduction=r))
      for op in ("nll_loss", "cross_entropy") for r in ("mean", "sum")),
    *(Case(op, [(4, 5), Labels(4, high=5)]) for op in ("nll_loss", "cross_entropy")),
    *(Case(op, [("n", 5), Labels("n", high=5)]) for op in ("nll_loss", "cross_entropy")),
    Case("nll_loss", [(4, 5), Labels(4, high=5)], label="nll(log_softmax)",
         build=lambda g, a: gc.nll_loss(gc.log_softmax(a[0], axis=-1), a[1]),
         ref=lambda z, labels: np_nll(np_log_softmax(z, 1), labels)),
    Case("nll_loss", [(4, 5), Labels(4, high=5)], label="nll(log_softmax,axis=1)sum",
         build=lambda g, a: gc.nll_loss(gc.log_softmax(a[0], axis=1), a[1], "sum"),
         ref=lambda z, labels: np_nll(np_log_softmax(z, 1), labels, "sum")),
    Case("mse_loss", [(3, 4), (3, 4)]),
    Case("mse_loss", [(3, 4), (4,)]),
    Case("mse_loss", [(4,), (3, 4)]),
    Case("mse_loss", [(3, 4), ()]),
    Case("mse_loss", [(3, 4), X(3, 1)]),
    Case("mse_loss", [("n", 4), (4,)]),
    Case("nll_grad", [Labels(4, high=5), ()], params=dict(depth=5, dtype=DT)),
    Case("nll_grad", [Labels(2, 3, high=4), ()], params=dict(depth=4, dtype=DT)),
    Case("softmax_nll_grad", [(4, 5), Labels(4, high=5), ()]),
    *STRUCTURE_CASES,
    *CONV_CASES,
    Case("scan", [(4, 3, 2), (5, 2), (5, 5), (5,), X(3, 5)], label="elman",
         build=lambda g, a: gc.scan(lambda h, x: (gc.elman_cell(h, x, a[1], a[2], a[3]),) * 2, a[4], a[0])[1],
         ref=lambda xs, W_ih, W_hh, b, h0: naive.elman(h0, xs, W_ih, W_hh, b, 0.0)),
]

# graphcomp's own ops: not those a test or a user defines, nor the derivative ops of sympy-defined ones
OWN_OPS = {name for name, op in OPS.items() if getattr(op, "builtin", True) and getattr(op, "of", None) is None}
NOT_DIFFERENTIABLE_OR_LEAF = {"greater", "less", "equal", "sign", "count", "zeros_like", "one_hot",
                              "unit", "input", "param", "constant", "random_mask"}
CONSTANT = np.array([[1.5, -2.0, 0.25], [3.0, 0.0, -7.5]])

NO_GRADIENT_CASES = [
    *(Case(op, shapes) for op in ("greater", "less", "equal") for shapes in BROADCASTS[:5]),
    Case("equal", [(3, 4)], label="x==x", build=lambda g, a: gc.equal(a[0], a[0]),
         ref=lambda x: x == x),
    Case("greater", [(3, 4)], label="x>0", build=lambda g, a: a[0] > 0, ref=lambda x: x > 0),
    Case("less", [(3, 4)], label="x<0.5", build=lambda g, a: a[0] < 0.5, ref=lambda x: x < 0.5),
    *(Case("sign", [shape]) for shape in UNARY_SHAPES),
    Case("count", [(2, 3, 4)], params=dict(axis=(0, 2))),
    Case("count", [("n", 4)], params=dict(axis=(0,))),
    Case("count", [("n", "m", 4)], params=dict(axis=(0, 1, 2))),
    Case("unit", [Labels(high=6)], params=dict(shape=(2, 3), dtype="float64")),
    Case("unit", [Labels(high=1)], params=dict(shape=(), dtype="float32")),
    Case("random_mask", [Labels(high=1000), (3, 4)], params=dict(rate=0.25),
         ref=lambda key, like, rate: np.random.default_rng(int(key)).random(like.shape) >= rate),
    Case("zeros_like", [(3, 4)]),
    Case("zeros_like", [()]),
    Case("one_hot", [Labels(4, high=5)], params=dict(depth=5, dtype="float64")),
    Case("one_hot", [Labels(2, 3, high=4)], params=dict(depth=6, dtype=DT)),
    Case("one_hot", [Labels("n", high=3)], params=dict(depth=3, dtype="float32")),
    Case("input", [X(3, 4)], build=lambda g, a: a[0]),
    Case("input", [Labels(4, high=9)], build=lambda g, a: a[0]),
    Case("input", [Mask("n", 2)], build=lambda g, a: a[0]),
    Case("param", [(3, 4)], build=lambda g, a: a[0]),
    Case("param", [()], build=lambda g, a: a[0]),
    Case("constant", [], label="array", build=lambda g, a: g.constant(CONSTANT),
         ref=lambda: CONSTANT),
    Case("constant", [], label="scalar", build=lambda g, a: g.constant(2.5), ref=lambda: 2.5),
    Case("constant", [], label="int-array", build=lambda g, a: g.constant(np.arange(4)),
         ref=lambda: np.arange(4)),
    Case("constant", [(3, 4)], label="x+array", build=lambda g, a: a[0] + g.constant(CONSTANT[0, :1]),
         ref=lambda x: x + CONSTANT[0, :1]),
]

# ---- building and running a case ---------------------------------------------------------------


def concrete(shape):
    return tuple(SIZES.get(d, d) for d in shape)


def draw(rng, domain, shape):
    if domain == SIGNED:
        return np.asarray(rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape))
    return np.asarray(rng.uniform(*domain, shape))


def build(case, dtype="float64"):
    """Return ``(graph, out, float params, feed, rng)`` for a case."""
    g = gc.Graph("t", dtype=dtype)
    rng = np.random.default_rng(zlib.crc32(str(case).encode()))
    args, wrt, feed = [], [], {}
    for i, a in enumerate(case.args):
        name, shape = f"a{i}", concrete(a.shape)
        if a.kind == "f":
            t = g.param(name, a.shape)
            wrt.append(t)
        else:
            t = g.input(name, a.shape, dtype={"x": None, "i": "int64", "b": "bool"}[a.kind])
        if a.kind in "fx":
            value = draw(rng, a.domain or case.domain, shape).astype(dtype)
        elif a.kind == "i":
            value = rng.integers(0, a.high, shape)
        else:
            value = rng.random(shape) < 0.5
        args.append(t)
        feed[name] = value
    params = {k: dtype if v is DT else v for k, v in case.params.items()}
    out = case.build(g, args, **params) if case.build else apply(case.op, args, params)
    return g, out, wrt, feed, rng


def scalar_loss(g, out, rng):
    """Reduce ``out`` to a scalar with fixed random weights, so every entry matters."""
    if out.shape == ():
        return out * 1.7
    weights = rng.normal(size=concrete(out.shape))
    return gc.sum(out * g.constant(weights, dtype=g.dtype), name="loss")


def reference(case, feed):
    return (case.ref or REF[case.op])(*feed.values(), **case.params)


def check_vjp(case):
    g, out, wrt, feed, rng = build(case)
    loss = scalar_loss(g, out, rng)
    report = gc.check_gradients(loss, wrt, feed, rtol=RTOL, atol=ATOL)
    assert report.ok, f"\n{report}"
    for row in report.rows:
        assert row.max_rel_error <= MAX_REL, f"\n{report}"
    return report


# ---- tests ------------------------------------------------------------------------------------


def test_every_registered_op_has_a_case():
    assert {c.op for c in CASES} | NOT_DIFFERENTIABLE_OR_LEAF == OWN_OPS
    assert {c.op for c in NO_GRADIENT_CASES} == NOT_DIFFERENTIABLE_OR_LEAF
    assert not {c.op for c in CASES} & NOT_DIFFERENTIABLE_OR_LEAF


def test_case_ids_are_unique():
    ids = [str(c) for c in CASES + NO_GRADIENT_CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vjp_matches_central_differences(case):
    check_vjp(case)


def check_forward(case):
    """The generated code gives NumPy's value, with the inferred shape and dtype."""
    g, out, wrt, feed, rng = build(case)
    got = gc.compile(out)(**feed)
    want = reference(case, feed)
    assert np.shape(got) == np.shape(want) == concrete(out.shape)
    assert np.asarray(got).dtype == np.asarray(want).dtype == np.dtype(out.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_matches_numpy(case):
    check_forward(case)


@pytest.mark.parametrize("case", [c for c in CASES + NO_GRADIENT_CASES if OPS[c.op].fresh], ids=str)
def test_ops_that_say_fresh_return_arrays_of_their_own(case):
    """Codegen writes later results into a fresh op's array once it is dead: it must not view an argument."""
    g, out, wrt, feed, rng = build(case)
    got = gc.compile(out).module.run(**feed)
    assert not any(np.shares_memory(got, value) for value in feed.values())


@pytest.mark.parametrize("case", [c for c in CASES + NO_GRADIENT_CASES
                                  if OPS[c.op].view and c.build is None and len(c.args) > 1], ids=str)
def test_ops_that_say_view_share_memory_with_their_first_arg_alone(case):
    """Codegen lets a view op's result take over its first arg's array once that is dead: the expression it
    emits may view that array (or copy it), never one of its other args (which give only shapes)."""
    g, out, wrt, feed, rng = build(case)
    attrs = g.nx.nodes[out.name]
    expr = OPS[case.op].emit(*(Name(a) for a in attrs["args"]), **attrs["params"])
    got = eval(NumpyPrinter().print(expr), {"np": np, **feed})     # our own printed IR
    assert not any(np.shares_memory(got, feed[a]) for a in attrs["args"][1:])


STEPS = 3


@pytest.mark.parametrize("case", [c for c in CASES + NO_GRADIENT_CASES if OPS[c.op].maps_leading_axes
                                  and c.build is None], ids=str)
def test_ops_that_say_they_map_leading_axes_compute_each_step_of_a_stack(case):
    """What a scan relies on to sum a loop-invariant arg's gradient after the loop: the op on its args of the
    most dims stacked over steps (the others as they are) is the stack of the op on each step's args."""
    g, out, wrt, feed, rng = build(case)
    most = max(len(a.shape) for a in case.args)
    stacked = {k: np.stack([v, *(_redraw(rng, case, a, v) for _ in range(STEPS - 1))]) if len(a.shape) == most else v
               for (k, v), a in zip(feed.items(), case.args, strict=True)}
    per_step = [gc.compile(out)(**{k: v[t] if v is not feed[k] else v for k, v in stacked.items()})
                for t in range(STEPS)]
    s = gc.Graph("steps", dtype=g.dtype)
    args = [s.input(k, np.shape(v), np.asarray(v).dtype.name) for k, v in stacked.items()]
    together = gc.compile(apply(case.op, args, {k: g.dtype if v is DT else v for k, v in case.params.items()}))
    np.testing.assert_allclose(together(**stacked), np.stack(per_step), rtol=1e-13, atol=1e-15)


def _redraw(rng, case, arg, like):
    """Another value for ``arg`` of ``case``, like ``like``."""
    if arg.kind == "b":
        return rng.random(like.shape) < 0.5
    if arg.kind == "i":
        return rng.integers(0, arg.high, like.shape)
    return draw(rng, arg.domain or case.domain, like.shape).astype(like.dtype)


@pytest.mark.parametrize("case", NO_GRADIENT_CASES, ids=str)
def test_op_without_gradient_compiles_and_matches_numpy(case):
    check_forward(case)


@pytest.mark.parametrize("case", [c for c in NO_GRADIENT_CASES if c.op not in ("param", "constant")
                                  and any(a.kind == "f" for a in c.args)], ids=str)
def test_ops_without_gradient_give_zero_gradient(case):
    g, out, wrt, feed, rng = build(case)
    loss = scalar_loss(g, out, rng)
    grads = gc.grad(loss, wrt)
    assert [d.op for d in grads] == ["zeros_like"] * len(wrt)
    f = gc.compile(grads)
    grads = f(**{k: feed[k] for k in f.inputs})
    for w, d in zip(wrt, grads):
        assert np.shape(d) == concrete(w.shape)
        assert not np.any(d)
    check_vjp(case)


def float32_vjp(case, dtype):
    """Forward value and the VJPs for a fixed cotangent (given as a graph constant of ``dtype``)."""
    g, out, wrt, feed, rng = build(case, dtype)
    if out.shape == ():
        grads = gc.grad(out, wrt)
    else:
        grads = gc.grad(out, wrt, grad_output=g.input("ct", out.shape))
        feed["ct"] = rng.normal(size=concrete(out.shape)).astype(dtype)
    return out, grads, feed


FLOAT32_CASES = [c for c in CASES if c.op != "cast"]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=str)
def test_float32_graph_stays_float32(case):
    """Forward and VJPs of a float32 graph run in float32 and are close to the float64 values."""
    out, grads, feed = float32_vjp(case, "float32")
    assert out.dtype == "float32" and all(d.dtype == "float32" for d in grads)
    f = gc.compile([out, *grads])
    got = f(**{k: feed[k] for k in f.inputs})
    assert [np.asarray(r).dtype.name for r in got] == ["float32"] * len(got)
    out, grads, _ = float32_vjp(case, "float64")        # the same float32 numbers, in float64
    f = gc.compile([out, *grads])
    want = f(**{k: v.astype("float64") if v.dtype.kind == "f" else v for k, v in feed.items() if k in f.inputs})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * (1 + np.max(np.abs(b), initial=0.0)))


@pytest.mark.parametrize("shape, loss", [
    ((3,), gc.sum), ((3,), gc.mean),
    ((1,), lambda x: gc.reshape(x, ())), ((3,), lambda x: gc.mse_loss(x, 0.5)),
    ((), gc.relu),
    ((3,), gc.max), ((2, 3), lambda x: gc.cross_entropy(x, x.graph.constant(np.array([0, 2])))),
    ((3,), lambda x: gc.sum(x, keepdims=True).reshape(()) * 2.0),
], ids=["sum", "mean", "reshape", "mse_loss", "relu", "max", "cross_entropy", "sum-keepdims"])
def test_gradient_of_float32_scalar_loss_is_float32(shape, loss):
    g = gc.Graph("t", dtype="float32")
    x = g.param("x", shape)
    dx = gc.grad(loss(x), x)
    f = gc.compile(dx)
    got = f(**({"x": np.full(shape, 1.5, dtype="float32")} if f.inputs else {}))
    assert (dx.dtype, np.asarray(got).dtype.name) == ("float32", "float32")


def test_cast_gradient_comes_back_in_the_input_dtype():
    g = gc.Graph("t", dtype="float32")
    x = g.param("x", (3, 4))
    y = gc.cast(x, "float64")
    loss = gc.sum(y * y)
    dx = gc.grad(loss, x)
    assert (y.dtype, loss.dtype, dx.dtype) == ("float64", "float64", "float32")
    value = np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4)
    got_y, got_dx = gc.compile([y, dx])(x=value)
    assert got_y.dtype == np.float64 and got_dx.dtype == np.float32
    np.testing.assert_allclose(got_dx, 2 * value, rtol=1e-6)
