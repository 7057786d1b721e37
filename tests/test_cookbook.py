"""Every Cookbook identity: the derived gradient equals the book's formula and central differences."""
import numpy as np
import pytest
import sympy as sp

import derive
from verify import central_difference, relative_error

from .cookbook import CASES, symbols, values

N = 3


def _check(case, S, n_values):
    f = case.f(S)
    X = S[case.wrt]
    G = derive.gradient(f, X)
    assert G.shape == X.shape, f"gradient shape {G.shape} differs from {X.shape}"
    names = [k for k in S if isinstance(S[k], sp.MatrixSymbol)]
    grad = derive.lambdify([S[k] for k in names], G)
    v = values(n_values, symmetric=case.symmetric)
    derived = np.asarray(grad(*[v[k] for k in names]), dtype=float)
    assert relative_error(derived, case.book(v)) < 1e-8, f"book formula differs for {G}"
    fd = central_difference(lambda **w: case.f_np(w), v, case.wrt)
    assert relative_error(derived, fd) < 1e-5, f"finite differences differ for {G}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_identity_concrete_size(case):
    _check(case, symbols(N), N)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_identity_symbolic_size(case):
    n, m = sp.symbols("n m", integer=True, positive=True)
    _check(case, symbols(n, m), N)


@pytest.mark.parametrize("case", CASES[:12], ids=str)
def test_result_evaluates_with_sympy_itself(case):
    S = symbols(2)
    v = values(2, symmetric=case.symmetric)
    G = derive.gradient(case.f(S), S[case.wrt])
    subs = {S[k]: sp.ImmutableMatrix(v[k]) for k in S if isinstance(S[k], sp.MatrixSymbol)}
    evaluated = G.subs(subs).doit()
    if isinstance(evaluated, sp.MatrixExpr):
        evaluated = evaluated.as_explicit()
    assert relative_error(np.array(evaluated.evalf(), dtype=float), case.book(v)) < 1e-8
