"""The op table: importing this package registers every op; imports the op families."""
from .elementwise import (abs, add, cast, div, equal, exp, greater, less, log, maximum, minimum, mul,
                          neg, pow, relu, sigmoid, sign, sqrt, sub, tanh, where)
from .leaves import zeros_like
from .linalg import (broadcast_like, expand_dims, matmul, reshape, reshape_like, squeeze,
                     transpose)
from .nn import (cross_entropy, log_softmax, mse_loss, nll_grad, nll_loss, one_hot, softmax,
                 softmax_nll_grad)
from .reduce import max, mean, sum

__all__ = ["abs", "add", "broadcast_like", "cast", "cross_entropy", "div", "equal", "exp",
           "expand_dims", "greater", "less", "log", "log_softmax", "matmul", "max", "maximum",
           "mean", "minimum", "mse_loss", "mul", "neg", "nll_grad", "nll_loss", "one_hot", "pow",
           "relu", "reshape", "reshape_like", "sigmoid", "sign", "softmax", "softmax_nll_grad",
           "sqrt", "squeeze", "sub", "sum", "tanh", "transpose", "where", "zeros_like"]
