"""Symbolic derivation of gradients in matrix form by the matrix-differential method."""
from .api import Derivation, derivation, gradient, gradients
from .codegen import lambdify
from .errors import DeriveError, UnsupportedOperation
from .functions import relu, sigmoid, softplus

__all__ = ["Derivation", "DeriveError", "UnsupportedOperation", "derivation", "gradient", "gradients",
           "lambdify", "relu", "sigmoid", "softplus"]
