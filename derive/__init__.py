"""Symbolic derivation of gradients in matrix form by the matrix-differential method."""
from .api import Derivation, derivation, gradient, gradients
from .backprop import Backprop, backprop
from .codegen import lambdify
from .document import html_document, latex_document, write
from .latex import Notation, latex
from .errors import (DeriveError, InvalidArgument, InvalidType, ParseError, ShapeError, UnsupportedOperation,
                     UsageError)
from .functions import Softmax, leaky_relu, relu, sigmoid, softplus
from .network import ACTIVATIONS, LAYOUTS, LOSSES, REDUCTIONS, Dense, Network, mlp
from .parser import parse
from .registry import register_activation, register_loss

__all__ = ["ACTIVATIONS", "LAYOUTS", "LOSSES", "REDUCTIONS", "Backprop", "Dense", "Derivation", "DeriveError",
           "InvalidArgument", "InvalidType", "Network", "Notation", "ParseError", "ShapeError", "UsageError", "Softmax", "UnsupportedOperation", "backprop", "derivation", "gradient", "gradients",
           "html_document", "lambdify", "latex", "latex_document", "leaky_relu", "mlp", "parse", "register_activation", "register_loss", "relu", "sigmoid", "softplus", "write"]
