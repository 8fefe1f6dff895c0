"""Optimizers and learning-rate schedules, each written out as IR statements of the update; imports codegen.ir.

An optimizer is a frozen description (its hyperparameters); ``compile_training``
asks it for module constants, the state slots each param needs and the
statements of one update, and prints them into ``train_step`` like every other
generated line. Nothing here runs at training time: the generated module does.

Every update follows PyTorch's definition of the optimizer of the same name
(``torch.optim``), so numbers can be compared across the two.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import KW_ONLY, dataclass, field, fields

from ..codegen.ir import Assign, AugAssign, BinOp, Call, Const, Name, np_attr, np_call
from ..errors import TrainingError

# The identifiers train_step uses for itself; no node may take them (see compile_training).
STEP, T, LR = "step", "t", "lr"


def _call(func, *args):
    return Call(Name(func), tuple(args))


def _times(a, b):
    return BinOp("*", a, b)


def _one_minus(constant):
    """``1 - CONSTANT``."""
    return BinOp("-", Const(1), Name(constant))


# --- learning-rate schedules -------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A factor on the base learning rate, a function of ``t``: the number of steps taken before this one."""

    def factor(self, t):
        """IR of the factor at step ``t`` (an IR expression of an int), or None for a constant 1."""
        raise NotImplementedError

    def formula(self, t):
        """The factor as text, for the comment on the learning-rate line."""
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """factor = 1: the learning rate never changes."""

    def factor(self, t):
        return None

    def formula(self, t):
        return "1"


@dataclass(frozen=True)
class StepDecay(Schedule):
    """factor = gamma ** (t // every): the rate is multiplied by ``gamma`` every ``every`` steps."""

    every: int
    gamma: float = 0.1

    def __post_init__(self):
        _check_count(self, "every")
        _check_real(self, "gamma", low=0.0, low_open=True)

    def factor(self, t):
        return BinOp("**", Const(float(self.gamma)), BinOp("//", t, Const(self.every)))

    def formula(self, t):
        return f"{self.gamma!r} ** ({t} // {self.every})"


@dataclass(frozen=True)
class Cosine(Schedule):
    """factor = final + (1 - final) * (1 + cos(pi * min(t, steps) / steps)) / 2: from 1 down to ``final``
    over ``steps`` steps (SGDR without restarts), then ``final``."""

    steps: int
    final: float = 0.0

    def __post_init__(self):
        _check_count(self, "steps")
        _check_real(self, "final", low=0.0, high=1.0)

    def factor(self, t):
        angle = BinOp("/", _times(np_attr("pi"), _call("min", t, Const(self.steps))), Const(self.steps))
        cos = _call("float", np_call("cos", angle))      # a Python float: weakly typed against float32 arrays
        half = _times(Const(0.5), BinOp("+", Const(1.0), cos))
        if self.final == 0:
            return half
        return BinOp("+", Const(float(self.final)), _times(Const(1.0 - self.final), half))

    def formula(self, t):
        half = f"(1 + cos(pi * min({t}, {self.steps}) / {self.steps})) / 2"
        return half if self.final == 0 else f"{self.final!r} + {1.0 - self.final!r} * {half}"


@dataclass(frozen=True)
class Warmup(Schedule):
    """factor = min(1, (t + 1) / steps) * then(max(t - steps, 0)): a linear ramp over the first ``steps``
    steps, then the schedule ``then`` (counted from the end of the warmup)."""

    steps: int
    then: Schedule = field(default_factory=Constant)

    def __post_init__(self):
        _check_count(self, "steps")
        if not isinstance(self.then, Schedule) or isinstance(self.then, Warmup):
            raise TrainingError(f"Warmup: then must be a schedule other than Warmup (Constant, StepDecay, "
                                f"Cosine), got {self.then!r}")

    def factor(self, t):
        ramp = _call("min", Const(1.0), BinOp("/", BinOp("+", t, Const(1)), Const(self.steps)))
        after = self.then.factor(_call("max", BinOp("-", t, Const(self.steps)), Const(0)))
        return ramp if after is None else _times(ramp, after)

    def formula(self, t):
        ramp = f"min(1, ({t} + 1) / {self.steps})"
        after = self.then.formula(f"max({t} - {self.steps}, 0)")
        return ramp if after == "1" else f"{ramp} * {after}"


# --- optimizers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Optimizer:
    """What every optimizer takes.

    ``weight_decay`` is L2 regularization added to the gradient (AdamW:
    decoupled, applied to the weights); ``clip_norm`` rescales all gradients
    together when their global L2 norm exceeds it (as
    ``torch.nn.utils.clip_grad_norm_`` does before the step, and before weight
    decay); ``schedule`` multiplies ``lr`` by a factor of the step count.
    """

    lr: float
    _: KW_ONLY
    weight_decay: float = 0.0
    clip_norm: float | None = None
    schedule: Schedule = field(default_factory=Constant)

    slots = ()             # the state arrays each param needs, by slot name

    def __post_init__(self):
        _check_real(self, "lr", low=0.0, low_open=True)
        _check_real(self, "weight_decay", low=0.0)
        if self.clip_norm is not None:
            _check_real(self, "clip_norm", low=0.0, low_open=True)
        if not isinstance(self.schedule, Schedule):
            raise TrainingError(f"{type(self).__name__}: schedule must be a gc.optim schedule (Constant, StepDecay, "
                                f"Cosine, Warmup), got {self.schedule!r}")

    def constants(self):
        """The module-level constants of the update: ``{identifier: value}`` (LR first)."""
        found = {"LR": float(self.lr)}
        found.update((k.upper(), float(getattr(self, k))) for k in self._hyper())
        if self.weight_decay:
            found["WEIGHT_DECAY"] = float(self.weight_decay)
        if self.clip_norm is not None:
            found["CLIP_NORM"] = float(self.clip_norm)
        return found

    def _hyper(self):
        """The names of the hyperparameters that become constants, besides lr, weight_decay and clip_norm."""
        return ()

    def prologue(self, grads):
        """Statements before the per-param updates: count the step, the learning rate, gradient clipping.

        ``grads`` are the identifiers of the gradient arrays (owned by train_step: updates may overwrite them).
        """
        t = Name(T)
        out = [Assign(t, _call("int", Name(STEP)), f"{T}: the number of steps taken before this one"),
               AugAssign(Name(STEP), "+", Const(1))]
        factor = self.schedule.factor(t)
        out.append(Assign(Name(LR), Name("LR") if factor is None else _times(Name("LR"), factor),
                          "learning rate: constant" if factor is None
                          else f"learning rate: lr = LR * {self.schedule.formula(T)}"))
        if self.clip_norm is not None:
            squares = [np_call("vdot", Name(g), Name(g)) for g in grads]
            total = squares[0]
            for s in squares[1:]:
                total = BinOp("+", total, s)
            out += [Assign(Name("grad_norm"), _call("float", np_call("sqrt", total)),
                           "the global L2 norm of all gradients"),
                    Assign(Name("clip"), _call("min", Const(1.0), BinOp("/", Name("CLIP_NORM"),
                                                                       BinOp("+", Name("grad_norm"), Const(1e-6)))),
                           "clip by global norm: scale every gradient by min(1, clip_norm / norm)")]
            out += [AugAssign(Name(g), "*", Name("clip")) for g in grads]
        return out

    def update(self, w, g, slots, local):
        """Statements updating param ``w`` in place from its gradient ``g`` (which they may overwrite).

        ``slots`` maps slot name -> identifier of the param's state array;
        ``local(base)`` gives a new local identifier.
        """
        out = []
        if self.weight_decay and not self._decoupled():
            out.append(AugAssign(Name(g), "+", _times(Name("WEIGHT_DECAY"), Name(w)),
                                 f"{type(self).__name__} weight decay (L2): {g} += WEIGHT_DECAY * {w}"))
        return out + self._update(w, g, slots, local)

    def _decoupled(self):
        return False

    def seeds_lr(self):
        """Whether the update is ``w -= lr * g`` alone, so the chain rule can be seeded with lr."""
        return False

    def _update(self, w, g, slots, local):
        raise NotImplementedError

    def __str__(self):
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.name == "lr" or getattr(self, f.name) != (f.default if f.name != "schedule" else Constant())]
        return f"{type(self).__name__}({', '.join(shown)})"


@dataclass(frozen=True)
class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    buf = momentum * buf + g;  w -= lr * buf  (Nesterov: w -= lr * (g + momentum * buf)).
    Without momentum: w -= lr * g, and the state holds the step count only.
    """

    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self):
        super().__post_init__()
        _check_real(self, "momentum", low=0.0, high=1.0, high_open=True)
        if not isinstance(self.nesterov, bool):
            raise TrainingError(f"SGD: nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and not self.momentum:
            raise TrainingError("SGD: nesterov=True needs a momentum > 0")
        object.__setattr__(self, "slots", ("buf",) if self.momentum else ())

    def _hyper(self):
        return ("momentum",) if self.momentum else ()

    def seeds_lr(self):
        return not self.momentum and not self.weight_decay and self.clip_norm is None

    def _update(self, w, g, slots, local):
        if not self.momentum:
            return [AugAssign(Name(g), "*", Name(LR), f"SGD: {w} -= lr * {g}"),
                    AugAssign(Name(w), "-", Name(g))]
        buf = slots["buf"]
        out = [AugAssign(Name(buf), "*", Name("MOMENTUM"), f"SGD momentum: {buf} = MOMENTUM*{buf} + {g}"),
               AugAssign(Name(buf), "+", Name(g))]
        if self.nesterov:
            return out + [AugAssign(Name(g), "+", _times(Name("MOMENTUM"), Name(buf)),
                                    f"SGD (Nesterov): {w} -= lr * ({g} + MOMENTUM*{buf})"),
                          AugAssign(Name(g), "*", Name(LR)),
                          AugAssign(Name(w), "-", Name(g))]
        return out + [AugAssign(Name(w), "-", _times(Name(LR), Name(buf)), f"SGD: {w} -= lr * {buf}")]


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``weight_decay`` adds L2 to the gradient.

    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g**2;
    w -= lr * m/(1-b1**k) / (sqrt(v/(1-b2**k)) + eps) at step k = t + 1, computed as
    w -= lr_t * m / (sqrt(v) + eps_t) with lr_t = lr*sqrt(1-b2**k)/(1-b1**k), eps_t = eps*sqrt(1-b2**k).
    """

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    slots = ("m", "v")

    def __post_init__(self):
        super().__post_init__()
        _check_real(self, "b1", low=0.0, high=1.0, high_open=True)
        _check_real(self, "b2", low=0.0, high=1.0, high_open=True)
        _check_real(self, "eps", low=0.0, low_open=True)

    def _hyper(self):
        return ("b1", "b2", "eps")

    def prologue(self, grads):
        k = BinOp("+", Name(T), Const(1))
        root = BinOp("**", BinOp("-", Const(1), BinOp("**", Name("B2"), k)), Const(0.5))      # sqrt(1 - B2**k)
        return super().prologue(grads) + [
            Assign(Name("lr_t"), BinOp("/", _times(Name(LR), root), BinOp("-", Const(1), BinOp("**", Name("B1"), k))),
                   "Adam bias correction at step t + 1: lr_t = lr * sqrt(1 - B2**(t+1)) / (1 - B1**(t+1))"),
            Assign(Name("eps_t"), _times(Name("EPS"), root), "eps_t = EPS * sqrt(1 - B2**(t+1))")]

    def _decay(self, w):
        return []

    def _update(self, w, g, slots, local):
        m, v = slots["m"], slots["v"]
        u = local(f"u_{w}")
        name = type(self).__name__
        return [*self._decay(w),
                AugAssign(Name(m), "*", Name("B1"), f"{name}: {m} = B1*{m} + (1-B1)*{g}"),
                AugAssign(Name(m), "+", _times(_one_minus("B1"), Name(g))),
                AugAssign(Name(v), "*", Name("B2"), f"{name}: {v} = B2*{v} + (1-B2)*{g}**2    "
                                                    f"(squared in {g}'s buffer: it is dead)"),
                AugAssign(Name(g), "*", Name(g)),
                AugAssign(Name(g), "*", _one_minus("B2")),
                AugAssign(Name(v), "+", Name(g)),
                Assign(Name(u), np_call("sqrt", Name(v), out=Name(g)),
                       f"{name}: {w} -= lr_t * {m} / (sqrt({v}) + eps_t)    (in {g}'s buffer)"),
                AugAssign(Name(u), "+", Name("eps_t")),
                Assign(Name(u), np_call("divide", Name(m), Name(u), out=Name(u))),
                AugAssign(Name(u), "*", Name("lr_t")),
                AugAssign(Name(w), "-", Name(u))]


@dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    w *= 1 - lr*weight_decay before the Adam step. ``weight_decay`` defaults to 0.01."""

    _: KW_ONLY
    weight_decay: float = 0.01

    def _decoupled(self):
        return True

    def _decay(self, w):
        if not self.weight_decay:
            return []
        return [AugAssign(Name(w), "*", BinOp("-", Const(1), _times(Name(LR), Name("WEIGHT_DECAY"))),
                          f"AdamW decoupled weight decay: {w} *= 1 - lr*WEIGHT_DECAY")]


@dataclass(frozen=True)
class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop`` without momentum or centering:
    v = alpha*v + (1-alpha)*g**2;  w -= lr * g / (sqrt(v) + eps)."""

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8

    slots = ("v",)

    def __post_init__(self):
        super().__post_init__()
        _check_real(self, "alpha", low=0.0, high=1.0, high_open=True)
        _check_real(self, "eps", low=0.0, low_open=True)

    def _hyper(self):
        return ("alpha", "eps")

    def _update(self, w, g, slots, local):
        v = slots["v"]
        u = local(f"u_{w}")
        return [AugAssign(Name(v), "*", Name("ALPHA"), f"RMSprop: {v} = ALPHA*{v} + (1-ALPHA)*{g}**2"),
                AugAssign(Name(v), "+", _times(_times(_one_minus("ALPHA"), Name(g)), Name(g))),
                Assign(Name(u), np_call("sqrt", Name(v)), f"RMSprop: {w} -= lr * {g} / (sqrt({v}) + EPS)"),
                AugAssign(Name(u), "+", Name("EPS")),
                Assign(Name(u), np_call("divide", Name(g), Name(u), out=Name(u))),
                AugAssign(Name(u), "*", Name(LR)),
                AugAssign(Name(w), "-", Name(u))]


# the module-level constants any optimizer may define; no node may take these names
CONSTANTS = ("LR", "B1", "B2", "EPS", "MOMENTUM", "ALPHA", "WEIGHT_DECAY", "CLIP_NORM")
# the locals every train_step with an optimizer uses
LOCALS = (STEP, T, LR, "lr_t", "eps_t", "grad_norm", "clip")


def _check_real(opt, attr, low=None, high=None, low_open=False, high_open=False):
    """TrainingError unless ``opt.attr`` is a finite real number in the given range."""
    value = getattr(opt, attr)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TrainingError(f"{type(opt).__name__}: {attr} must be a finite real number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
        interval = f"{left}{low}, {high if high is not None else 'inf'}{right}"
        raise TrainingError(f"{type(opt).__name__}: {attr} must be in {interval}, got {value!r}")


def _check_count(opt, attr):
    value = getattr(opt, attr)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise TrainingError(f"{type(opt).__name__}: {attr} must be a positive int, got {value!r}")
