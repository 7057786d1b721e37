"""Independent checks of derived gradients: the closed-form recursion, a hand-written reference for networks of
blocks, finite differences, exact proofs. Names are imported on first use, so that the pytest plugin's
`import verify` costs a test run that does not check gradients nothing."""
from importlib import import_module
from typing import TYPE_CHECKING

# name -> the submodule that defines it (a submodule itself where the two are the same)
_HOME = {"Checked": "handwritten.check", "Report": "report", "Spec": "recursion", "WrittenError": "handwritten.errors",
         "assert_gradients_match": "assertions", "assert_hvp_match": "second", "blocks": "blocks",
         "central_difference": "numeric", "check": "report", "check_derivation": "handwritten.check",
         "check_products": "second",
         "check_second": "second", "data": "data", "recursion": "recursion", "register_block": "blocks",
         "relative_error": "numeric"}
__all__ = ["Checked", "Report", "Spec", "WrittenError", "assert_gradients_match", "assert_hvp_match", "blocks",
           "central_difference", "check", "check_derivation", "check_products", "check_second", "data", "recursion", "register_block", "relative_error"]

if TYPE_CHECKING:   # what the lazy names are, for type checkers and editors
    from . import blocks, data, recursion
    from .assertions import assert_gradients_match
    from .blocks import register_block
    from .report import Report, check
    from .handwritten.check import Checked, check_derivation
    from .handwritten.errors import WrittenError
    from .numeric import central_difference, relative_error
    from .recursion import Spec
    from .second import assert_hvp_match, check_products, check_second


def __getattr__(name):
    """verify.<name>, its submodule imported on first use."""
    if name not in _HOME:
        raise AttributeError(f"module 'verify' has no attribute {name!r}")
    module = import_module(f".{_HOME[name]}", __name__)
    value = module if _HOME[name] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
