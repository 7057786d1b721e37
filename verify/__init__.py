"""Independent checks of derived gradients: the closed-form recursion, a hand-written reference for networks of
blocks, finite differences, exact proofs."""
from . import blocks, data, recursion
from .assertions import assert_gradients_match
from .blocks import register_block
from .check import Report, check
from .numeric import central_difference, relative_error
from .recursion import Spec
from .second import assert_hvp_match, check_products, check_second

__all__ = ["Report", "Spec", "assert_gradients_match", "assert_hvp_match", "blocks", "central_difference", "check",
           "check_products", "check_second", "data", "recursion", "register_block", "relative_error"]
