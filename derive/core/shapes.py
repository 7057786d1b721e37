"""Shapes: every operation of an expression checked to conform (sizes equal as written), and memoised `.shape` for
SymPy's composite matrix expressions, inside the toolkit's own calls only.

SymPy checks the sizes of a product or a sum only where they are integers: A X with A n × m and X n × n is built,
and n × n. `conform` checks them exactly: m and n are different sizes unless the user substitutes one for the other.

SymPy recomputes `.shape` recursively on every access, and `MatMul.shape` visits its first and
last factor separately; on an expression whose first and last factor share a sub-expression that
doubles per level, so shape queries cost 2^depth. Expressions are immutable, so while one of the
toolkit's entry points runs (`memoised`), the shape is stored on the object the first time it is
asked for (same value, computed once); outside them SymPy's own properties are in place.
"""
import functools
import threading

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.determinant import Determinant
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.inverse import Inverse
from sympy.matrices.expressions.matadd import MatAdd
from sympy.matrices.expressions.matmul import MatMul
from sympy.matrices.expressions.matpow import MatPow
from sympy.matrices.expressions.trace import Trace
from sympy.matrices.expressions.transpose import Transpose

from ..errors import ShapeError
from .expr import children, postorder

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

# the operations whose operands must have equal shapes, by the name the error gives them
ELEMENTWISE = {MatAdd: "sum", HadamardProduct: "Hadamard product"}
# the operations of one square operand: tr X, |X|, X⁻¹, X^k
SQUARE = {Trace: "trace", Determinant: "determinant", Inverse: "inverse", MatPow: "power"}


def _equal(a, b):
    """Whether the sizes a and b are equal as written (n·m and m·n are; n and m are not, nor n and 3)."""
    return a == b or sp.expand(a - b) == 0


def _advice(a, b):
    return f"; sizes are compared as written: if {a} = {b}, substitute one for the other (f.subs({a}, {b}))"


def conform_node(node):
    """node itself, if its operands fit: consecutive factors of a product (columns = rows), the terms of a sum and
    the factors of a Hadamard product (equal shapes), the operand of tr, det, inverse and power (square); else a
    ShapeError naming the operation, the operands and their shapes."""
    if isinstance(node, MatMul):
        factors = [a for a in node.args if a.is_Matrix]
        for A, B in zip(factors, factors[1:]):
            if not _equal(A.cols, B.rows):
                raise ShapeError(f"the product {node} does not conform: {A} has shape {A.shape} and {B} has shape "
                                 f"{B.shape} ({A.cols} columns, {B.rows} rows){_advice(A.cols, B.rows)}")
    elif isinstance(node, tuple(ELEMENTWISE)):
        first = node.args[0]
        for B in node.args[1:]:
            unequal = [(a, b) for a, b in zip(first.shape, B.shape) if not _equal(a, b)]
            if unequal:
                what = next(v for k, v in ELEMENTWISE.items() if isinstance(node, k))
                raise ShapeError(f"the {what} {node} does not conform: {first} has shape {first.shape} and {B} has "
                                 f"shape {B.shape}{_advice(*unequal[0])}")
    elif isinstance(node, tuple(SQUARE)):
        A = node.args[0]
        if not _equal(A.rows, A.cols):
            what = next(v for k, v in SQUARE.items() if isinstance(node, k))
            raise ShapeError(f"the {what} of {A}: {A} has shape {A.shape}, not square{_advice(A.rows, A.cols)}")
    return node


def conform(expr):
    """expr itself, each of its operations checked by conform_node (each shared node once)."""
    for node in postorder(expr, children):
        conform_node(node)
    return expr

