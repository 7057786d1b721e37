"""Independent numerical checks of derived gradients."""
from .numeric import central_difference, relative_error

__all__ = ["central_difference", "relative_error"]
