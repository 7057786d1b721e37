"""Operands that depend on the variable where a rule might treat them as constants (the exponent of A^∘s, the body
of an elementwise function, X⁻ᵏ): every entry point derives them correctly, checked against central differences of
F, or refuses them by name; and every result prints."""
import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower

import derive
from derive.errors import UnsupportedOperation
from derive.printing.latex import latex
from derive.printing.text import text

from .test_second import fd_hessian, vec

n = 3
X, A, G = (sp.MatrixSymbol(k, n, n) for k in "XAG")
y = sp.Symbol("y")
rng = np.random.default_rng(7)
# positive entries (log A and A^∘s are real), a trace near 1 (A^∘tr X is well scaled)
A0, G0 = rng.uniform(0.5, 1.5, size=(n, n)), rng.normal(size=(n, n))
X0 = rng.uniform(0.2, 0.8, size=(n, n)) / 1.5


def numeric(e, at):
    """e evaluated by generated code at the arrays `at` {name: array}."""
    args = sorted(e.free_symbols, key=str)
    return np.asarray(derive.lambdify(args, e)(*[at[str(s)] for s in args]), dtype=float)


def fd_jacobian(F, at):
    """J with d vec F = J d vec X, by central differences of F."""
    return fd_hessian(lambda x: numeric(F, {**at, "X": x}).reshape(F.shape), at["X"], 1e-6)


AT = {"X": X0, "A": A0, "G": G0}
VARYING_EXPONENT = [HadamardPower(A, sp.Trace(X)), HadamardPower(X, sp.Trace(X)),
                    HadamardPower(X + A, 2 * sp.Trace(A * X))]


@pytest.mark.parametrize("F", VARYING_EXPONENT, ids=str)
def test_a_hadamard_power_with_a_varying_exponent_is_derived_by_every_entry_point(F):
    J = fd_jacobian(F, AT)
    assert np.allclose(numeric(derive.jacobian(F, X), AT), J, rtol=1e-6, atol=1e-8)
    # Jᵀ vec G, and the gradient of tr F (G = I)
    assert np.allclose(vec(numeric(derive.vjp(F, X, G), AT)), J.T @ vec(G0), rtol=1e-6, atol=1e-8)
    assert np.allclose(vec(numeric(derive.gradient(sp.Trace(F), X), AT)), J.T @ vec(np.eye(n)), rtol=1e-6, atol=1e-8)
    f = sp.Trace(G.T * F)
    H = fd_hessian(lambda x: numeric(derive.gradient(f, X), {**AT, "X": x}), X0, 1e-6)
    assert np.allclose(numeric(derive.hessian(f, X), AT), H, rtol=1e-5, atol=1e-7)
    str(derive.hessian_derivation(f, X))


BODY = [A.applyfunc(sp.Lambda(y, y * sp.Trace(X))), X.applyfunc(sp.Lambda(y, y * sp.Trace(X))),
        X.applyfunc(sp.Lambda(y, sp.exp(y * X[0, 1])))]


@pytest.mark.parametrize("F", BODY, ids=str)
@pytest.mark.parametrize("entry", ["jacobian", "vjp", "gradient", "hessian", "hvp"])
def test_an_elementwise_body_that_depends_on_the_variable_is_refused_by_name(F, entry):
    call = {"jacobian": lambda: derive.jacobian(F, X), "vjp": lambda: derive.vjp(F, X, G),
            "gradient": lambda: derive.gradient(sp.Trace(F), X), "hessian": lambda: derive.hessian(sp.Trace(F), X),
            "hvp": lambda: derive.hvp(sp.Trace(F), X, G)}[entry]
    with pytest.raises(UnsupportedOperation, match="ElementwiseApplyFunction.*function depends on the variable"):
        call()


def test_an_elementwise_body_with_a_constant_matrix_quantity_is_derived():
    F = X.applyfunc(sp.Lambda(y, sp.sin(y) * sp.Trace(A)))
    J = fd_jacobian(F, AT)
    assert np.allclose(numeric(derive.jacobian(F, X), AT), J, rtol=1e-6, atol=1e-8)
    assert np.allclose(vec(numeric(derive.vjp(F, X, G), AT)), J.T @ vec(G0), rtol=1e-6, atol=1e-8)


def test_a_hessian_through_a_log_determinant_prints_and_is_the_derivative_of_its_gradient():
    """SymPy's own str() of log|I + 2X| inside tanh asked for Abs of the determinant of a sum, which SymPy cannot."""
    k = sp.Symbol("n", integer=True, positive=True)
    Xk = sp.MatrixSymbol("X", k, k)
    f = sp.tanh(sp.log(sp.det(sp.Identity(k) + 2 * Xk)))
    H = derive.hessian(f, Xk)
    assert "LogDet(I + 2*X)" in str(H) and "log(|2 X + I|)" in text(H)
    assert "tanh" in str(derive.hessian_derivation(f, Xk)) and r"\tanh" in latex(H)
    f3 = f.xreplace({Xk: X}).subs(k, n)
    Hn = fd_hessian(lambda x: numeric(derive.gradient(f3, X), {"X": x}), X0 / 5, 1e-6)
    assert np.allclose(numeric(derive.hessian(f3, X), {"X": X0 / 5}), Hn, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_negative_power_of_a_matrix_is_the_inverse_s_power(k):
    """tr(X⁻¹X⁻¹) is X**-2 in SymPy; d tr X^{−k} = −k tr(X^{−k−1} dX), so ∂/∂X = −k (X^{−k−1})ᵀ (Cookbook)."""
    Xw = X0 + 3 * np.eye(n)
    f = sp.Trace(sp.MatPow(X, -k)) if k != 2 else sp.Trace(X.I * X.I)
    Xinv = np.linalg.inv(Xw)
    book = -k * np.linalg.matrix_power(Xinv, k + 1).T
    assert np.allclose(numeric(derive.gradient(f, X), {"X": Xw}), book, rtol=1e-10)
    F = sp.MatPow(X, -k)
    assert np.allclose(numeric(derive.jacobian(F, X), {"X": Xw}), fd_jacobian(F, {"X": Xw}), rtol=1e-6, atol=1e-8)
    Hn = fd_hessian(lambda x: numeric(derive.gradient(f, X), {"X": x}), Xw, 1e-6)
    assert np.allclose(numeric(derive.hessian(f, X), {"X": Xw}), Hn, rtol=1e-5, atol=1e-7)
    text(derive.hessian(f, X))


def test_an_exponent_holding_a_sum_of_matrices_is_derived():
    """SymPy's x**p runs factor_terms on p, which cannot rebuild a MatAdd inside tr((4I + tanh(X − 1cᵀ))⁻¹): the
    exponent's derivative rule must not build x**p (found by tests/test_fuzz_forward.py)."""
    c = sp.MatrixSymbol("c", n, 1)
    inner = sp.MatAdd(HadamardPower(sp.MatAdd(HadamardPower(X, 2), sp.OneMatrix(n, n)), -2),
                      sp.MatMul(-1, sp.OneMatrix(n, 1), c.T))
    W = sp.MatAdd(sp.MatMul(4, sp.Identity(n)), sp.MatMul(sp.Rational(3, 10), inner.applyfunc(sp.tanh)))
    F = HadamardPower(X + A, 1 + sp.tanh(sp.Trace(sp.Inverse(W))) / 2)
    at = {**AT, "c": rng.normal(size=(n, 1))}
    J = fd_jacobian(F, at)
    assert np.allclose(numeric(derive.jacobian(F, X), at), J, rtol=1e-6, atol=1e-8)
    assert np.allclose(vec(numeric(derive.vjp(F, X, G), at)), J.T @ vec(G0), rtol=1e-6, atol=1e-8)
    # and it prints: the printers ask whether a coefficient tanh(log|W|) is negative, which runs factor_terms too
    J = derive.jacobian(HadamardPower(X + A, 1 + sp.tanh(sp.log(sp.Determinant(W))) / 2), X)
    assert "tanh" in text(J) and r"\tanh" in latex(J)


def test_a_body_holding_a_sum_of_matrices_is_simplified_and_derived():
    """sin(x)·tanh(tr(σ(A) + ½·1)) entrywise, times X X A: the Hadamard algebra's scalar image held the trace of a
    matrix sum, which SymPy's factor_terms cannot rebuild (found by tests/test_fuzz_forward.py)."""
    half = sp.MatAdd(A.applyfunc(derive.sigmoid), sp.MatMul(sp.Rational(1, 2), sp.OneMatrix(n, n)))
    F = sp.HadamardProduct(X * X * A, A.applyfunc(sp.Lambda(y, sp.sin(y) * sp.tanh(sp.Trace(half)))))
    J = fd_jacobian(F, AT)
    assert np.allclose(numeric(derive.jacobian(F, X), AT), J, rtol=1e-6, atol=1e-8)
    assert np.allclose(vec(numeric(derive.vjp(F, X, G), AT)), J.T @ vec(G0), rtol=1e-6, atol=1e-8)


def test_the_derivative_of_a_body_holding_a_log_determinant_is_taken():
    """sin(x)·tanh(log|4I + 0.3 tanh A|) entrywise: SymPy's diff asked whether tanh of the log-determinant is finite
    and rebuilt the matrix sum inside it (found by tests/test_fuzz_forward.py)."""
    W = sp.MatAdd(sp.MatMul(4, sp.Identity(n)), sp.MatMul(sp.Rational(3, 10), A.applyfunc(sp.tanh)))
    F = X.applyfunc(sp.Lambda(y, sp.sin(y) * sp.tanh(sp.log(sp.Determinant(W)))))
    J = fd_jacobian(F, AT)
    assert np.allclose(numeric(derive.jacobian(F, X), AT), J, rtol=1e-6, atol=1e-8)
    assert np.allclose(vec(numeric(derive.vjp(F, X, G), AT)), J.T @ vec(G0), rtol=1e-6, atol=1e-8)
