"""graphcomp's smooth activations, defined as sympy expressions (see ``elementwise``); imports symbolic.

sympy derives each derivative and the printer makes it stable (sigmoid's
form is exp(-logaddexp(0, -z)), softplus is logaddexp(0, z), ELU's exponential
is clamped to its own branch). ``sigmoid``, ``tanh`` and ``exp`` stay
hand-written ops in ``ops/elementwise.py``: their VJPs reuse the output
(``y(1 - y)``, ``1 - y²``, ``y``), which a derivative in terms of the input
would compute again.
"""
import sympy as sp

from ..op import OPS
from .expression import Expression

z = sp.Symbol("z")
alpha, scale, slope = sp.Symbol("alpha"), sp.Symbol("scale"), sp.Symbol("negative_slope")
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

ACTIVATIONS = [
    ("softplus", sp.log(1 + sp.exp(z)), {}, "y = log(1 + exp(z)), element-wise (a smooth relu)."),
    ("log_sigmoid", sp.log(1 / (1 + sp.exp(-z))), {}, "y = log σ(z) = -softplus(-z), element-wise."),
    ("silu", z / (1 + sp.exp(-z)), {}, "y = z σ(z) (SiLU, also called swish), element-wise."),
    ("mish", z * sp.tanh(sp.log(1 + sp.exp(z))), {}, "y = z tanh(softplus(z)), element-wise."),
    ("elu", sp.Piecewise((z, z > 0), (alpha * (sp.exp(z) - 1), True)), {alpha: 1.0},
     "y = z for z > 0, alpha (exp(z) - 1) otherwise, element-wise."),
    ("selu", scale * sp.Piecewise((z, z > 0), (alpha * (sp.exp(z) - 1), True)),
     {alpha: _SELU_ALPHA, scale: _SELU_SCALE}, "y = scale · elu(z, alpha), element-wise (self-normalizing)."),
    ("leaky_relu", sp.Piecewise((z, z > 0), (slope * z, True)), {slope: 0.01},
     "y = z for z > 0, negative_slope · z otherwise, element-wise; dy/dz = negative_slope at 0."),
    ("gelu", z / 2 * (1 + sp.erf(z / sp.sqrt(2))), {},
     "y = z Φ(z) = z/2 (1 + erf(z/√2)), element-wise (exact GELU; generated code needs SciPy's erf)."),
    ("gelu_tanh", z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + sp.Float("0.044715") * z**3))), {},
     "y = z/2 (1 + tanh(√(2/π) (z + 0.044715 z³))), element-wise (GELU, tanh approximation)."),
    ("log1p", sp.log(1 + z), {}, "y = log(1 + z), element-wise, accurate for small z."),
    ("expm1", sp.exp(z) - 1, {}, "y = exp(z) - 1, element-wise, accurate for small z."),
    ("sin", sp.sin(z), {}, "y = sin(z), element-wise."),
    ("cos", sp.cos(z), {}, "y = cos(z), element-wise."),
]

for _name, _expr, _params, _doc in ACTIVATIONS:
    OPS[_name] = Expression(_name, _expr, (z,), _params, builtin=True, doc=_doc)
