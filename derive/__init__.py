"""Symbolic derivation of gradients in matrix form by the matrix-differential method."""
from . import _shapes  # noqa: F401  (memoised shapes, before any expression is built)
from .api import Derivation, derivation, gradient, gradients
from .backprop import Backprop, backprop
from .codegen import lambdify
from .document import write
from .latex import Notation, latex
from .errors import DeriveError, UnsupportedOperation
from .functions import Softmax, leaky_relu, relu, sigmoid, softplus
from .network import ACTIVATIONS, LAYOUTS, LOSSES, REDUCTIONS, Dense, Network, mlp

__all__ = ["ACTIVATIONS", "LAYOUTS", "LOSSES", "REDUCTIONS", "Backprop", "Dense", "Derivation", "DeriveError",
           "Network", "Notation", "Softmax", "UnsupportedOperation", "backprop", "derivation", "gradient", "gradients",
           "lambdify", "latex", "leaky_relu", "mlp", "relu", "sigmoid", "softplus", "write"]
