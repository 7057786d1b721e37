"""Memoised `.shape` for SymPy's composite matrix expressions.

SymPy recomputes `.shape` recursively on every access, and `MatMul.shape` visits its first and
last factor separately; on an expression whose first and last factor share a sub-expression that
doubles per level, so shape queries cost 2^depth. Expressions are immutable, so the shape is
stored on the object the first time it is asked for (same value, computed once).
"""
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.inverse import Inverse
from sympy.matrices.expressions.matadd import MatAdd
from sympy.matrices.expressions.matmul import MatMul
from sympy.matrices.expressions.matpow import MatPow
from sympy.matrices.expressions.transpose import Transpose


def _memoised(compute):
    def shape(self):
        cached = self.__dict__.get("_derive_shape")
        if cached is None:
            cached = self.__dict__["_derive_shape"] = compute(self)
        return cached

    shape._derive_memoised = True
    return property(shape)


def install():
    for cls in (MatMul, MatAdd, HadamardProduct, HadamardPower, ElementwiseApplyFunction, Transpose, Inverse, MatPow):
        if not getattr(cls.shape.fget, "_derive_memoised", False):
            cls.shape = _memoised(cls.shape.fget)


install()
