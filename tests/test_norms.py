"""A 1×1 matrix is the scalar it holds: fractional powers of xᵀy (SymPy's sqrt(xᵀy) is a MatPow of a 1×1 product),
norms, cosine similarity; the five scalar cases of SymPy's own matrix-derivative tests, against their hand-written
gradients and central differences, through generated code."""
import numpy as np
import pytest
import sympy as sp

import derive
from derive.printing.latex import latex
from derive.printing.text import text
from verify import central_difference

from .test_dependence import fd_jacobian, numeric
from .test_second import fd_hessian

n = 3
x, y, a, b, c, d = (sp.MatrixSymbol(k, n, 1) for k in "xyabcd")
X, M = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, n)
rng = np.random.default_rng(3)
AT = {**{k: rng.uniform(0.5, 1.5, size=(n, 1)) for k in "xyabcd"}, "X": rng.uniform(0.5, 1.5, size=(n, n)),
      "A": rng.normal(size=(n, n))}
v = AT
norm = lambda z: np.sqrt(z.T @ z)  # noqa: E731
SYMPY_CASES = {   # f, variable, the gradient as SymPy's tests write it
    "sqrt(x'y)": (sp.sqrt(x.T * y), x, lambda: v["y"] / (2 * np.sqrt(v["x"].T @ v["y"]))),
    "sqrt(x'x)": (sp.sqrt(x.T * x), x, lambda: v["x"] / norm(v["x"])),
    "(c'a x'b)^(1/3)": ((c.T * a * x.T * b) ** sp.Rational(1, 3), x,
                        lambda: v["b"] * (v["c"].T @ v["a"]) / (3 * (v["c"].T @ v["a"] * v["x"].T @ v["b"]) ** (2 / 3))),
    "sqrt(a'Xb)": (sp.sqrt(a.T * X * b), X, lambda: v["a"] @ v["b"].T / (2 * np.sqrt(v["a"].T @ v["X"] @ v["b"]))),
    "d'x sqrt(a'Xb) y'c": (d.T * x * sp.sqrt(a.T * X * b) * y.T * c, X,
                           lambda: (v["d"].T @ v["x"]) * (v["y"].T @ v["c"]) * v["a"] @ v["b"].T
                           / (2 * np.sqrt(v["a"].T @ v["X"] @ v["b"]))),
}


def fd_gradient(f, wrt):
    return central_difference(lambda **kw: float(numeric(f, kw).squeeze()), AT, str(wrt))


@pytest.mark.parametrize("name", SYMPY_CASES)
def test_sympy_s_own_scalar_cases_are_derived(name):
    f, wrt, book = SYMPY_CASES[name]
    G = numeric(derive.gradient(f, wrt), AT)
    assert np.allclose(G, book(), rtol=1e-10)
    assert np.allclose(G, fd_gradient(f, wrt), rtol=1e-6, atol=1e-9)
    # the derivation's generated code
    args = {str(s): AT[str(s)] for s in derive.derivation(f, wrt).plan()[0]}
    assert np.allclose(derive.derivation(f, wrt).numpy()(**args), G, rtol=1e-12)


NORMS = {
    "‖x‖": (sp.sqrt(x.T * x), lambda: v["x"] / norm(v["x"])),
    "‖Ax − b‖": (sp.sqrt((M * x - b).T * (M * x - b)),
                 lambda: v["A"].T @ (v["A"] @ v["x"] - v["b"]) / norm(v["A"] @ v["x"] - v["b"])),
    "cosine": (x.T * y * (x.T * x) ** sp.Rational(-1, 2) * (y.T * y) ** sp.Rational(-1, 2),
               lambda: v["y"] / (norm(v["x"]) * norm(v["y"]))
               - (v["x"].T @ v["y"]) * v["x"] / (norm(v["x"]) ** 3 * norm(v["y"]))),
}


@pytest.mark.parametrize("name", NORMS)
def test_norms_and_cosine_similarity(name):
    f, book = NORMS[name]
    G = numeric(derive.gradient(f, x), AT)
    assert np.allclose(G, book(), rtol=1e-10)
    assert np.allclose(G, fd_gradient(f, x), rtol=1e-6, atol=1e-9)


def test_l2_normalisation_jacobian_and_the_hessian_of_the_norm():
    F = x * (x.T * x) ** sp.Rational(-1, 2)
    u = v["x"] / norm(v["x"])
    book = (np.eye(n) - u @ u.T) / norm(v["x"])   # ∂(x/‖x‖)/∂x, also the Hessian of ‖x‖
    J = numeric(derive.jacobian(F, x), AT)
    assert np.allclose(J, book, rtol=1e-10)
    assert np.allclose(J, fd_hessian(lambda z: numeric(F, {**AT, "x": z}), v["x"], 1e-6), rtol=1e-6, atol=1e-9)
    f = sp.sqrt(x.T * x)
    H = numeric(derive.hessian(f, x), AT)
    assert np.allclose(H, book, rtol=1e-10)
    assert np.allclose(H, fd_hessian(lambda z: numeric(derive.gradient(f, x), {**AT, "x": z}), v["x"], 1e-6),
                       rtol=1e-6, atol=1e-9)



def test_the_square_of_a_1x1_matrix_differentiates_to_no_first_power():
    """d (xᵀx)² = 2 (xᵀx) d(xᵀx): no MatPow(xᵀx, 1), whose SymPy str() raised inside a Kronecker product."""
    F = M * x * (x.T * x) ** 2 * sp.OneMatrix(1, n)
    J = derive.jacobian(F, x)
    assert "**1" not in str(J)
    assert np.allclose(numeric(J, AT), fd_hessian(lambda z: numeric(F, {**AT, "x": z}), v["x"], 1e-6), rtol=1e-6,
                       atol=1e-8)


@pytest.mark.parametrize("name", ["‖x‖", "cosine"])
def test_hessian_and_hvp_code_of_the_norm_and_cosine_similarity(name):
    """The generated .numpy() of hessian_derivation and hvp_derivation against central differences of the gradient
    (hand-written above, and checked there against differences of f)."""
    f, book = NORMS[name]
    w = sp.MatrixSymbol("w", n, 1)
    grad = lambda z: numeric(derive.gradient(f, x), {**AT, "x": z})  # noqa: E731
    H = fd_hessian(grad, v["x"], 1e-6)
    args = {str(s): AT[str(s)] for s in derive.hessian_derivation(f, x).plan()[0]}
    assert np.allclose(derive.hessian_derivation(f, x).numpy()(**args), H, rtol=1e-6, atol=1e-8)
    direction = rng.normal(size=(n, 1))
    h = derive.hvp_derivation(f, x, w)
    args = {str(s): {**AT, "w": direction}[str(s)] for s in h.plan()[0]}
    assert np.allclose(h.numpy()(**args), H @ direction, rtol=1e-6, atol=1e-8)
    both = derive.hessian_derivation(f, x).numpy("gradient_and_hessian")(**{k: a for k, a in args.items() if k != "w"})
    assert np.allclose(both["gradient"], book(), rtol=1e-10) and np.allclose(both["hessian"], H, rtol=1e-6, atol=1e-8)


def test_a_1x1_power_is_its_own_transpose_in_results():
    """((xᵀx)^(-1/2))ᵀ = (xᵀx)^(-1/2): ∂‖x‖/∂x reads x ‖x‖₂^(-1), one term (values checked above)."""
    grad = derive.gradient(sp.sqrt(x.T * x), x)
    assert derive.printing.text.text(grad) == "x ‖x‖₂**(-1)"
    assert np.allclose(numeric(grad, AT), v["x"] / norm(v["x"]), rtol=1e-12)


def test_norms_print_as_norms():
    """(uᵀu)^p prints as ‖u‖₂^(2p) and tr(UᵀU)^p as ‖U‖_F^(2p), in text and LaTeX; the printed gradient's value is
    u/‖u‖₂ (checked against NumPy's norm)."""
    n = sp.Symbol("n", integer=True, positive=True)
    x, b = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("b", n, 1)
    X, A = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, n)
    cases = [
        (sp.sqrt(x.T * x), x, "‖x‖₂", "x ‖x‖₂**(-1)", r"x \lVert x \rVert_2^{-1}"),
        (sp.sqrt((A * x - b).T * (A * x - b)), x, "‖A x - b‖₂", None, r"\lVert A x - b \rVert_2^{-1}"),
        (sp.sqrt(sp.Trace(X.T * X)), X, "‖X‖_F", "‖X‖_F**(-1) X", r"\lVert X \rVert_F^{-1} X"),
        (sp.sqrt(sp.Trace((A * X).T * (A * X))), X, "‖A X‖_F", "‖A X‖_F**(-1) Aᵀ A X", None),
    ]
    for f, wrt, f_text, g_text, g_latex in cases:
        G = derive.gradient(f, wrt)
        assert text(f) == f_text
        if g_text:
            assert text(G) == g_text
        if g_latex:
            assert g_latex in latex(G)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 1))
    assert np.allclose(derive.lambdify([x], derive.gradient(sp.sqrt(x.T * x), x))(v), v / np.linalg.norm(v))
    assert text(sp.sqrt(x.T * A * x)) == "(xᵀ A x)**(1/2)"   # not of the form uᵀu: no norm
