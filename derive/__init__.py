"""Symbolic derivation of gradients in matrix form by the matrix-differential method."""
from . import _shapes  # noqa: F401  (memoised shapes, before any expression is built)
from .api import Derivation, derivation, gradient, gradients
from .codegen import lambdify
from .errors import DeriveError, UnsupportedOperation
from .functions import relu, sigmoid, softplus

__all__ = ["Derivation", "DeriveError", "UnsupportedOperation", "derivation", "gradient", "gradients",
           "lambdify", "relu", "sigmoid", "softplus"]
