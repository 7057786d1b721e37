"""Memoised `.shape` for SymPy's composite matrix expressions, inside the toolkit's own calls only.

SymPy recomputes `.shape` recursively on every access, and `MatMul.shape` visits its first and
last factor separately; on an expression whose first and last factor share a sub-expression that
doubles per level, so shape queries cost 2^depth. Expressions are immutable, so while one of the
toolkit's entry points runs (`memoised`), the shape is stored on the object the first time it is
asked for (same value, computed once); outside them SymPy's own properties are in place.
"""
import functools
import threading

from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.inverse import Inverse
from sympy.matrices.expressions.matadd import MatAdd
from sympy.matrices.expressions.matmul import MatMul
from sympy.matrices.expressions.matpow import MatPow
from sympy.matrices.expressions.transpose import Transpose

CLASSES = (MatMul, MatAdd, HadamardProduct, HadamardPower, ElementwiseApplyFunction, Transpose, Inverse, MatPow)
ORIGINAL = {cls: cls.__dict__["shape"] for cls in CLASSES}
_lock = threading.RLock()
_active = 0


def _memoised(compute):
    def shape(self):
        cached = self.__dict__.get("_derive_shape")
        if cached is None:
            cached = self.__dict__["_derive_shape"] = compute(self)
        return cached

    return property(shape)


MEMOISED = {cls: _memoised(prop.fget) for cls, prop in ORIGINAL.items()}


def memoised(function):
    """function, run with memoised shapes (re-entrant; SymPy's own properties are restored when the outermost
    call returns)."""
    @functools.wraps(function)
    def scoped(*args, **kwargs):
        global _active
        with _lock:
            if _active == 0:
                for cls in CLASSES:
                    cls.shape = MEMOISED[cls]
            _active += 1
        try:
            return function(*args, **kwargs)
        finally:
            with _lock:
                _active -= 1
                if _active == 0:
                    for cls in CLASSES:
                        cls.shape = ORIGINAL[cls]
    return scoped
