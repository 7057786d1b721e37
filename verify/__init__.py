"""Independent numerical checks of derived gradients."""
from . import recursion
from .numeric import central_difference, relative_error
from .recursion import Spec

__all__ = ["Spec", "central_difference", "recursion", "relative_error"]
