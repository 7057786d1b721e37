"""Symbolic derivation of gradients in matrix form by the matrix-differential method.

One package per stage, each using only the ones before it (tests/test_structure.py checks the imports):
core (expressions, functions, the operator table, the registries, the parser) -> printing (text, LaTeX, array
code) -> codegen (Program) -> engine (the reverse sweep; Derivation, which prints and compiles itself through
printing and codegen) -> networks (Network, Backprop) -> documents (LaTeX, HTML, PDF) -> cli.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("matrix-backprop")
except PackageNotFoundError:   # run from a checkout that was never installed
    __version__ = "0+unknown"

from .errors import (DeriveError, DocumentError, InvalidArgument, InvalidType, ParseError, ShapeError,
                     UnsupportedOperation, UsageError)
from .core.functions import Softmax, leaky_relu, relu, sigmoid, softplus
from .core.parser import parse
from .core.registry import ACTIVATIONS, LOSSES, register_activation, register_loss
from .engine.derivation import Derivation, derivation, gradient, gradients
from .engine.second import (SecondDerivation, hessian, hessian_derivation, hvp, hvp_derivation, jacobian,
                            symmetric_gradient, vjp)
from .networks.blocks import (Block, Conv1D, Dense, LayerNorm, Parameter, Recurrent, Residual, SelfAttention, arg,
                              register_block)
from .networks.batch_norm import BatchNorm
from .networks.dropout import Dropout
from .networks.embedding import Embedding
from .networks.gated import GRU, LSTM
from .networks.pooling import MaxPool1D
from .networks.network import LAYOUTS, REDUCTIONS, Network, mlp
from .networks.backprop import Backprop, backprop
from .printing.latex import Notation, latex
from .codegen.program import lambdify
from .documents import html_document, latex_document, write

__all__ = ["ACTIVATIONS", "LAYOUTS", "LOSSES", "REDUCTIONS", "Backprop", "BatchNorm", "Block", "Conv1D", "Dense",
           "GRU", "LSTM", "LayerNorm", "MaxPool1D", "Recurrent", "Residual", "SecondDerivation", "SelfAttention",
           "Derivation", "DeriveError", "Dropout", "Embedding", "DocumentError", "InvalidArgument", "InvalidType",
           "Network", "Notation", "Parameter", "ParseError", "ShapeError", "Softmax", "UnsupportedOperation",
           "UsageError", "backprop", "derivation", "gradient", "gradients", "hessian", "arg", "hessian_derivation",
           "html_document", "hvp", "hvp_derivation", "jacobian", "symmetric_gradient", "vjp", "lambdify", "latex",
           "latex_document", "leaky_relu", "mlp", "parse", "register_activation", "register_block", "register_loss",
           "relu", "sigmoid", "softplus", "write"]
