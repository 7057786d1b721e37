"""The package's structure: one error hierarchy, SymPy left as it was, no import cycles, verify apart from derive."""
import ast
import pathlib

import pytest
import sympy as sp

import derive
from derive import errors

ROOT = pathlib.Path(derive.__file__).resolve().parent


def test_every_error_is_a_derive_error():
    for name in ("InvalidArgument", "InvalidType", "ShapeError", "ParseError", "UsageError", "NotElementwise",
                 "UnsupportedOperation"):
        assert issubclass(getattr(errors, name), errors.DeriveError), name
    with pytest.raises(errors.ParseError):
        derive.parse("A +", {"A": (2, 2)})
    with pytest.raises(errors.InvalidArgument, match="activation"):
        derive.mlp([2, 2], activation="nope")
    n = sp.Symbol("n", integer=True, positive=True)
    X = sp.MatrixSymbol("X", n, n)
    with pytest.raises(errors.ShapeError, match="scalar or a 1×1 matrix"):
        derive.gradient(X, X)


def test_import_and_use_leave_sympys_shape_properties_unchanged():
    from sympy.matrices.expressions.matmul import MatMul
    from sympy.matrices.expressions.matadd import MatAdd

    before = {cls: cls.__dict__["shape"] for cls in (MatMul, MatAdd)}
    n = sp.Symbol("n", integer=True, positive=True)
    A, X = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("X", n, n)
    assert derive.gradient(sp.Trace(A * X * X), X) is not None
    derive.latex(A * X)
    derive.backprop(derive.mlp([2, 3, 2])).source()
    assert {cls: cls.__dict__["shape"] for cls in (MatMul, MatAdd)} == before
    assert (A * X + X).shape == (n, n)
