"""The engine's contract: readable results, named intermediates, errors, and linear DAG traversal."""
import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct as Had

import derive
from derive.core.functions import apply
from verify import central_difference, relative_error

n, m = sp.symbols("n m", integer=True, positive=True)
X, A, B = (sp.MatrixSymbol(k, n, n) for k in "XAB")
Z, Y = sp.MatrixSymbol("Z", n, m), sp.MatrixSymbol("Y", n, m)
ones = sp.OneMatrix


def same(a, b):
    """Structural equality up to the order of terms and factors (SymPy's canonical form)."""
    return a.doit() == b.doit()


def bce(A_):
    """−1ᵀ(Y ⊙ log A + (1 − Y) ⊙ log(1 − A))1, seed 004's loss."""
    J = ones(n, m)
    return -(ones(1, n) * (Had(Y, A_.applyfunc(sp.log)) + Had(J - Y, (J - A_).applyfunc(sp.log))) * ones(m, 1))


def test_bce_of_sigmoid_simplifies_to_A_minus_Y():
    assert same(derive.gradient(bce(Z.applyfunc(derive.sigmoid)), Z), apply(derive.sigmoid, Z) - Y)


def test_bce_with_named_activation_gives_A_minus_Y():
    A_ = sp.MatrixSymbol("A", n, m)
    assert same(derive.gradient(bce(A_), Z, where={A_: Z.applyfunc(derive.sigmoid)}), A_ - Y)


def test_handwritten_sigmoid_lambda_is_recognised():
    x = sp.Symbol("x")
    handwritten = Z.applyfunc(sp.Lambda(x, 1 / (1 + sp.exp(-x))))
    assert same(derive.gradient(bce(handwritten), Z), apply(derive.sigmoid, Z) - Y)


@pytest.mark.parametrize("f, expected", [
    (sp.Trace(A * X.T * B), B * A),                              # no double transposes (cookbook eq 102)
    (ones(1, n) * Had(A, X) * ones(n, 1), A),                    # no ⊙ with the all-ones matrix
    (sp.Trace(X.T * X), 2 * X),                                  # scalars pulled out (cookbook eq 115)
    (sp.log(sp.det(X)), X.T.I),                                  # cookbook eq 56
    (sp.Determinant(A * X * B), sp.Determinant(A * X * B) * X.T.I),  # X X⁻¹ cancelled (cookbook eq 51)
    (sp.Trace(A), sp.ZeroMatrix(n, n)),                          # X absent: the zero matrix
], ids=["tr-AXtB", "sum-A-had-X", "tr-XtX", "logdet", "det-AXB", "absent"])
def test_results_read_as_a_person_writes_them(f, expected):
    assert same(derive.gradient(f, X), expected)


def test_scalar_symbol_variable_and_parameters():
    t = sp.Symbol("t")
    f = sp.Trace(t * X) + t ** 2 * sp.Trace(A)
    assert same(derive.gradient(f, X), t * sp.Identity(n))
    assert sp.simplify(derive.gradient(f, t) - (sp.Trace(X) + 2 * t * sp.Trace(A))) == 0


def test_gradients_of_several_variables_in_one_sweep():
    f = sp.Trace(A * X * B)
    grads = derive.gradients(f, [A, X, B])
    assert same(grads[X], A.T * B.T)
    assert same(grads[A], B.T * X.T)
    assert same(grads[B], X.T * A.T)


def test_non_scalar_f_is_rejected_with_its_shape():
    with pytest.raises(ValueError, match=r"\(n, n\)"):
        derive.gradient(A * X, X)


def test_unsupported_operator_is_named_with_its_sub_expression():
    from sympy.matrices.expressions.kronecker import KroneckerProduct
    f = sp.Trace(KroneckerProduct(A, X))
    with pytest.raises(derive.UnsupportedOperation, match="KroneckerProduct") as info:
        derive.gradient(f, X)
    assert "A" in str(info.value) and "X" in str(info.value)


def test_elementwise_function_without_derivative_is_rejected():
    g = sp.Function("g")
    with pytest.raises(derive.UnsupportedOperation, match="g"):
        derive.gradient(sp.Trace(X.applyfunc(g)), X)


def test_definition_with_wrong_shape_names_both_shapes():
    H = sp.MatrixSymbol("H", n, m)
    with pytest.raises(ValueError, match=r"\(n, m\).*\(n, n\)"):
        derive.gradient(sp.Trace(H.T * H), X, where={H: A * X})


def test_wrt_must_be_a_symbol():
    with pytest.raises(TypeError):
        derive.gradient(sp.Trace(X), X.T)


def test_shared_subexpressions_are_visited_once():
    """A chain where each level uses the previous one twice: 2^k paths, k nodes."""
    from derive.core.shapes import memoised

    @memoised   # SymPy's own MatAdd checks shapes recursively: 2^k shape queries without the memo
    def chain(k):
        E = X
        for _ in range(k):
            E = sp.MatAdd(sp.MatMul(sp.Rational(1, 2), Had(E, E)), E)  # built unevaluated: SymPy's * and + are not
        return E

    k = 20
    d = derive.derivation(sp.Trace(chain(k)), X)
    assert len(d.steps) < 20 * k


def test_deep_shared_chain_matches_finite_differences():
    E = X
    for _ in range(6):
        E = (E * A).applyfunc(sp.tanh) + E
    f = sp.Trace(E)
    grad = derive.lambdify([X, A], derive.gradient(f, X))
    rng = np.random.default_rng(1)
    v = {"X": rng.normal(size=(3, 3)) * 0.5, "A": rng.normal(size=(3, 3)) * 0.5}

    def f_np(X, A):
        E = X
        for _ in range(6):
            E = np.tanh(E @ A) + E
        return np.trace(E)

    assert relative_error(grad(v["X"], v["A"]), central_difference(f_np, v, "X")) < 1e-6


def test_lambdify_reads_symbolic_sizes_off_its_inputs_and_checks_arity():
    f = derive.lambdify([A, X], derive.gradient(sp.Trace(A * X * X), X))
    a, x = np.arange(16.0).reshape(4, 4), np.eye(4)
    assert np.allclose(f(a, x), (x @ a + a @ x).T)
    with pytest.raises(TypeError, match="expected 2 arguments"):
        f(a)
    with pytest.raises(ValueError, match="B"):
        derive.lambdify([X], A * B)


def test_a_scalar_variable_split_over_a_products_arguments_is_differentiated():
    """−1 · s/2 · D, as SymPy builds it from a subtraction: s/2 is a factor of the coefficient −s/2 (found by the
    fuzzer: it was refused as an argument the product rule does not differentiate)."""
    s = sp.Symbol("s", real=True)
    D = sp.MatrixSymbol("D", 2, 2)
    f = sp.Trace(sp.MatMul(-1, s / 2, D, evaluate=False))
    G = derive.derivation(f, s).gradient
    values = {D: sp.ImmutableMatrix([[1.0, 2.0], [3.0, 4.5]])}
    assert sp.simplify(sp.sympify(G).xreplace(values).doit() - (-5.5 / 2)) == 0
