"""popxl.ops: thin wrappers over the op registry."""
from . import collectives, var_updates
from .call import CallSiteInfo, call, call_with_info
from .host import host_load, host_store, init
from .math import (abs, add, add_, cast, clamp, clip, detach, div, equal, exp, floor, gelu, geluerf, greater,
                   identity, less, log, maximum, minimum, mul, negate, pow, relu, sigmoid, sign, sqrt, sub,
                   tanh, where)
from .nn import (flatten, l1, l2, lamb_square, logsum, logsumexp, matmul, max, mean, min, nll_loss,
                 nll_loss_with_softmax_grad, prod, reshape, softmax, sum, sumsquare, transpose)
from .indexing import concat, concat_, gather, slice, slice_
from .inplace import detach_, exp_, flatten_, gelu_, geluerf_, relu_, reshape_, swish_, transpose_
from .math import (ceil, cos, fmod, isfinite, isinf, isnan, log2, logical_and, logical_not, logical_or, rename,
                   sin, swish)
from .scaled_add import scaled_add, scaled_add_

__all__ = [
    "var_updates", "CallSiteInfo", "call", "call_with_info", "host_load", "host_store", "init", "abs", "add", "add_",
    "cast", "clamp", "clip", "detach", "div", "equal", "exp", "floor", "gelu", "geluerf", "greater", "identity",
    "less", "log", "maximum", "minimum", "mul", "negate", "pow", "relu", "sigmoid", "sign", "sqrt", "sub", "tanh",
    "where", "flatten", "matmul", "max", "mean", "min", "nll_loss_with_softmax_grad", "reshape", "softmax", "sum",
    "sumsquare", "transpose", "lamb_square", "scaled_add", "scaled_add_", "collectives", "concat", "concat_", "gather",
    "slice", "slice_", "detach_", "exp_", "flatten_", "gelu_", "geluerf_", "relu_", "reshape_", "transpose_", "rename",
    "swish_", "ceil", "fmod", "isfinite", "isinf", "isnan", "log2", "logical_and", "logical_not", "logical_or",
    "swish", "nll_loss", "sin", "cos", "l1", "l2", "logsum", "logsumexp", "prod",
]
