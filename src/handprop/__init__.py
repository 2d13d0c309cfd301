"""handprop: backpropagation written out by hand in NumPy, checked against PyTorch autograd.

>>> import numpy as np
>>> from handprop import Sequential
>>> from handprop.layers import Linear, Sigmoid
>>> from handprop.losses import BCELoss
>>> model = Sequential(Linear(2, 1, rng=0), Sigmoid())
>>> loss_fn = BCELoss()
>>> cost = loss_fn(model(np.array([[1.0, 2.0]])), np.array([[1.0]]))
>>> grad_x = model.backward(loss_fn.backward())
>>> grad_x.shape, model[0].weight.grad.shape
((1, 2), (1, 2))
"""

from . import data, layers, losses, optim
from ._gradcheck import GradcheckReport, gradcheck
from .explain.diagnose import ModuleReport, check_module
from .explain.trace import Trace, trace
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .module import Module, Parameter, Sequential
from .serialization import load, save

__version__ = "0.1.0"

__all__ = [
    "GradcheckReport",
    "Module",
    "ModuleReport",
    "Parameter",
    "Sequential",
    "Trace",
    "__version__",
    "check_module",
    "data",
    "enable_grad",
    "gradcheck",
    "is_grad_enabled",
    "layers",
    "load",
    "losses",
    "no_grad",
    "optim",
    "save",
    "trace",
]
