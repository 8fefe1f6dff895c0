"""Neural-network ops: softmax, log_softmax and the losses; imports graph, op, shapes, codegen.ir, notation."""
import numpy as np

from .. import notation
from ..codegen.ir import Attr, BinOp, Call, Const, Index, Name, Tuple, UnOp, np_attr, np_call
from ..errors import DTypeError, OpError, ShapeError
from ..graph import F, dtype_name
from ..op import OPS, Op, no_gradient, register, require_float, result_dtype
from ..shapes import broadcast_shapes, dims_compatible, format_shape, is_int, normalize_axes
from .reduce import count

_SOFTMAX = '''
def _softmax(x, axis):
    """exp(x) / sum(exp(x)) along axis, shifted by the max so exp cannot overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
'''

_LOG_SOFTMAX = '''
def _log_softmax(x, axis):
    """x - log(sum(exp(x))) along axis, shifted by the max so exp cannot overflow."""
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted
'''

_CROSS_ENTROPY = '''
def _cross_entropy(logits, labels):
    """Mean over rows of -log(softmax(logits))[label], computed stably."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return (log_norm - shifted[np.arange(labels.shape[0]), labels]).sum() / labels.shape[0]
'''

_SOFTMAX_NLL_GRAD = '''
def _softmax_nll_grad(logp, labels, scale):
    """(softmax - one_hot(labels)) * scale from log-probabilities logp, in one new array."""
    grad = np.exp(logp)
    grad[np.arange(labels.shape[0]), labels] -= 1
    grad *= scale
    return grad
'''


class AlongAxis(Op):
    """An op along one axis of a float tensor; same shape out."""

    def math(self, shapes, x, *, axis):
        return notation.apply(self.name, shapes[0], x, axis=axis - len(shapes[0]))

    def normalize(self, x, *, axis=-1):
        if not is_int(axis):
            raise ShapeError(f"axis must be one int, got {axis!r}")
        return {"axis": normalize_axes(axis, x.ndim)[0]}

    def infer(self, x, *, axis):
        require_float(x, self.name)
        return x.shape, x.dtype


@register
class Softmax(AlongAxis):
    """y = exp(x) / sum(exp(x)) along axis;  dx = y * (ct - sum(ct * y))."""
    name = "softmax"
    helpers = {"_softmax": _SOFTMAX}

    def emit(self, x, *, axis):
        return Call(Name("_softmax"), (x, Const(axis)))

    def vjp(self, ct, y, x, *, axis):
        return (y * (ct - F.sum(ct * y, axis, keepdims=True)),)


@register
class LogSoftmax(AlongAxis):
    """y = x - log(sum(exp(x))) along axis;  dx = ct - exp(y) * sum(ct)."""
    name = "log_softmax"
    helpers = {"_log_softmax": _LOG_SOFTMAX}

    def emit(self, x, *, axis):
        return Call(Name("_log_softmax"), (x, Const(axis)))

    def vjp(self, ct, y, x, *, axis):
        if ct.op == "nll_grad" and axis == x.ndim - 1:
            # NOTE: the chain rule through nll_loss then log_softmax collapses to
            # (softmax - one_hot) * scale, computed from y in place (3 array ops, not 7).
            labels, scale = ct.args
            return (F.softmax_nll_grad(y, labels, scale),)
        return (ct - F.exp(y) * F.sum(ct, axis, keepdims=True),)


def check_labels(scores, labels, what):
    """Rows of (n, classes) float ``scores`` against (n,) integer ``labels``."""
    require_float(scores, what)
    if np.dtype(labels.dtype).kind not in "iu":
        raise DTypeError(f"labels {labels.name!r} must be integers, got {labels.dtype}")
    if scores.ndim != 2 or labels.ndim != 1 or not dims_compatible(scores.shape[0], labels.shape[0]):
        raise ShapeError(f"expected (n, classes) scores and (n,) labels, got "
                         f"{format_shape(scores.shape)} and {format_shape(labels.shape)}")
    if not isinstance(scores.shape[1], int):
        raise ShapeError(f"the class dim of {format_shape(scores.shape)} must be static")


def picked(scores, labels):
    """IR for ``scores[np.arange(n), labels]``: each row's score at its label."""
    rows = np_call("arange", Index(Attr(labels, "shape"), Const(0)))
    return Index(scores, Tuple((rows, labels)))


class ReadsLabels(Op):
    """An op whose arg ``label_arg`` holds integer labels indexing ``depth(...)`` classes.

    NumPy reads a negative index from the end, so a label of -1 would
    silently pick the last class: ``bounds`` tells the compiled wrapper to
    refuse fed labels outside [0, depth).
    """

    label_arg = 0

    def depth(self, *args, **params):
        """The number of classes the labels index: the last dim of the scores (or the depth param)."""
        return params.get("depth") or args[0].shape[-1]

    def bounds(self, *args, **params):
        depth = self.depth(*args, **params)
        return {self.label_arg: (0, depth, f"a class index of {depth} classes")}


class Loss(ReadsLabels):
    """A scalar loss of (n, classes) scores and (n,) integer labels."""

    def math(self, shapes, scores, labels, *, reduction):
        return notation.apply(self.name, (), scores, labels, reduction=int(reduction == "mean"))

    label_arg = 1

    def normalize(self, scores, labels, *, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise OpError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        return {"reduction": reduction}

    def infer(self, scores, labels, *, reduction):
        check_labels(scores, labels, self.name)
        return (), scores.dtype

    def formula(self, scores, labels, *, reduction):
        return super().formula(scores, labels, **({} if reduction == "mean" else {"reduction": reduction}))

    @staticmethod
    def scale(ct, labels, reduction):
        """ct, divided by the batch size for a mean."""
        return ct / count(labels, (0,)) if reduction == "mean" else ct


@register
class NllLoss(Loss):
    """y = -mean_i logp[i, labels[i]] (or the sum);  dlogp = -ct * one_hot(labels) / n."""
    name = "nll_loss"

    def emit(self, logp, labels, *, reduction):
        total = UnOp("-", Call(Attr(picked(logp, labels), "sum")))
        # NOTE: sum / n rather than ndarray.mean, whose Python-level wrapper costs ~2 us a call
        return total if reduction == "sum" else BinOp("/", total, Index(Attr(labels, "shape"), Const(0)))

    def vjp(self, ct, y, logp, labels, *, reduction):
        return F.nll_grad(labels, self.scale(ct, labels, reduction), logp.shape[1], logp.dtype), None


@register
class CrossEntropy(Loss):
    """y = mean_i -log_softmax(logits)[i, labels[i]], stable;  dlogits = (softmax - one_hot) * ct / n."""
    name = "cross_entropy"
    helpers = {"_cross_entropy": _CROSS_ENTROPY}

    def emit(self, logits, labels, *, reduction):
        call = Call(Name("_cross_entropy"), (logits, labels))
        if reduction == "sum":
            return BinOp("*", call, Index(Attr(labels, "shape"), Const(0)))
        return call

    def vjp(self, ct, y, logits, labels, *, reduction):
        return F.softmax_nll_grad(F.log_softmax(logits, 1), labels, self.scale(ct, labels, reduction)), None


@register
class NllGrad(ReadsLabels):
    """y = -one_hot(labels, depth) * scale: the gradient of nll_loss for its log-probabilities."""
    name = "nll_grad"

    def math(self, shapes, labels, scale, *, depth, dtype):
        return -notation.mul(shapes[0], notation.apply("one_hot", shapes[0], labels, depth=depth), scale)

    def normalize(self, labels, scale, *, depth, dtype):
        # NOTE: nll_loss's VJP builds it; a graph file may hold any params, so they are checked like one_hot's
        return OPS["one_hot"].normalize(labels, depth=depth, dtype=dtype)

    def infer(self, labels, scale, *, depth, dtype):
        return labels.shape + (depth,), dtype

    def emit(self, labels, scale, *, depth, dtype):
        return BinOp("*", Index(np_call("eye", Const(depth), dtype=np_attr(dtype)), labels), UnOp("-", scale))

    def vjp(self, ct, y, labels, scale, *, depth, dtype):
        return None, -F.sum(ct * F.one_hot(labels, depth, dtype))


@register
class SoftmaxNllGrad(ReadsLabels):
    """y = (exp(logp) - one_hot(labels)) * scale, for logp = log_softmax(z):
    the gradient of nll_loss(log_softmax(z)) for z, computed in place."""
    name = "softmax_nll_grad"

    def math(self, shapes, logp, labels, scale):
        probs = notation.function("exp", shapes[0], None, logp)
        one_hot = notation.apply("one_hot", shapes[0], labels, depth=int(shapes[0][-1]))
        return notation.mul(shapes[0], notation.add(shapes[0], probs, -one_hot), scale)
    helpers = {"_softmax_nll_grad": _SOFTMAX_NLL_GRAD}
    label_arg = 1

    def infer(self, logp, labels, scale):
        return logp.shape, logp.dtype

    def emit(self, logp, labels, scale):
        return Call(Name("_softmax_nll_grad"), (logp, labels, scale))

    def vjp(self, ct, y, logp, labels, scale):
        probs = F.exp(logp)
        return ct * probs * scale, None, F.sum(ct * (probs - F.one_hot(labels, logp.shape[1], logp.dtype)))


@register
class OneHot(ReadsLabels):
    """y[i, k] = 1.0 if labels[i] == k else 0.0, for k < depth."""
    name = "one_hot"

    def math(self, shapes, labels, *, depth, dtype):
        return notation.apply("one_hot", shapes[0], labels, depth=depth)
    vjp = no_gradient

    def normalize(self, labels, *, depth, dtype="float64"):
        if not is_int(depth) or depth < 1:
            raise OpError(f"depth must be a positive int, got {depth!r}")
        return {"depth": int(depth), "dtype": dtype_name(dtype, "one_hot")}

    def infer(self, labels, *, depth, dtype):
        if np.dtype(labels.dtype).kind not in "iu":
            raise DTypeError(f"labels {labels.name!r} must be integers, got {labels.dtype}")
        return labels.shape + (depth,), dtype

    def emit(self, labels, *, depth, dtype):
        return Index(np_call("eye", Const(depth), dtype=np_attr(dtype)), labels)


@register
class MseLoss(Op):
    """y = mean((pred - target) ** 2);  dpred = 2 ct (pred - target) / n,  dtarget = -dpred."""
    name = "mse_loss"

    def math(self, shapes, pred, target):
        return notation.apply("mse", (), pred, target)

    def infer(self, pred, target):
        require_float(pred, self.name)
        broadcast_shapes(pred.shape, target.shape)
        return (), result_dtype(pred, target)

    def emit(self, pred, target):
        return np_call("mean", np_call("square", BinOp("-", pred, target)))

    def vjp(self, ct, y, pred, target):
        diff = pred - target
        grad = diff * (ct * 2 / count(diff, tuple(range(diff.ndim))))
        return grad, -grad
