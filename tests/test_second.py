"""Second order: Hessians against the textbook forms (Magnus–Neudecker; Matrix Cookbook §2.4.2) written by hand in
NumPy and against central differences of hand-written gradients; Hessian-vector and Gauss–Newton products of
random networks against verify's recursion; Jacobians, VJPs, symmetric gradients; every printer branch of the
Kronecker algebra run as code; bad input."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
import verify
from derive.core.expr import Commutation, Vec
from derive.errors import InvalidArgument, ShapeError, UnsupportedOperation
from verify.strategies import block_networks, mlp_specs

from .networks import tables
from .test_blocks import build

n, p, m = 3, 2, 5
A, B, X, Xs, S = (sp.MatrixSymbol(k, *s) for k, s in (("A", (n, n)), ("B", (p, p)), ("X", (n, p)), ("X", (n, n)),
                                                     ("S", (n, n))))
x, V, Vs = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("V", n, p), sp.MatrixSymbol("V", n, n)
D, w, y, a = sp.MatrixSymbol("D", m, n), sp.MatrixSymbol("w", n, 1), sp.MatrixSymbol("y", m, 1), sp.MatrixSymbol("a", m, 1)
W, Xd, Y = sp.MatrixSymbol("W", p, n), sp.MatrixSymbol("X", n, m), sp.MatrixSymbol("Y", p, m)
rng = np.random.default_rng(0)
VALUES = {"A": rng.normal(size=(n, n)), "B": rng.normal(size=(p, p)), "x": rng.normal(size=(n, 1)),
          "D": rng.normal(size=(m, n)), "w": rng.normal(size=(n, 1)), "y": rng.integers(0, 2, size=(m, 1)) * 1.0,
          "W": rng.normal(size=(p, n)), "Y": np.eye(p)[:, rng.integers(0, p, size=m)]}
sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731


def vec(M):
    return M.T.reshape(-1, 1)


def commutation(r, c):
    K = np.zeros((r * c, r * c))
    for i in range(r):
        for j in range(c):
            K[i * c + j, j * r + i] = 1
    return K


def softmax(Z):
    e = np.exp(Z - Z.max(axis=0))
    return e / e.sum(axis=0)


def fd_hessian(grad, x0, eps=1e-5):
    """Column k: (g(x + εe_k) − g(x − εe_k)) / 2ε, e_k the k-th unit of vec x."""
    cols = []
    for k in range(x0.size):
        e = np.zeros(x0.size)
        e[k] = eps
        E = e.reshape(x0.shape[::-1]).T
        cols.append(vec((grad(x0 + E) - grad(x0 - E)) / (2 * eps)).ravel())
    return np.column_stack(cols)


# (id, f, variable, where, point (the variable's value), the book's gradient and Hessian written by hand in NumPy)
def _logistic():
    D_, y_ = VALUES["D"], VALUES["y"]
    f = -sp.Trace(y.T * a.applyfunc(sp.log) + (sp.OneMatrix(m, 1) - y).T * (sp.OneMatrix(m, 1) - a).applyfunc(sp.log)) / m
    return ("logistic-regression", f, w, {a: (D * w).applyfunc(derive.sigmoid)}, VALUES["w"],
            lambda w_: D_.T @ (sig(D_ @ w_) - y_) / m,
            lambda w_: D_.T @ np.diag((sig(D_ @ w_) * (1 - sig(D_ @ w_))).ravel()) @ D_ / m)


def _softmax_ce():
    X_, Y_ = rng.normal(size=(n, m)), VALUES["Y"]
    f = -sp.Trace(Y.T * derive.Softmax(W * Xd, 0).applyfunc(sp.log)) / m

    def hessian(W_):
        # Σ_i (x_i x_iᵀ) ⊗ (diag(s_i) − s_i s_iᵀ) / m
        P = softmax(W_ @ X_)
        return sum(np.kron(np.outer(X_[:, i], X_[:, i]), np.diag(P[:, i]) - np.outer(P[:, i], P[:, i]))
                   for i in range(m)) / m
    return ("softmax-cross-entropy-one-layer", f.xreplace({Xd: sp.MatrixSymbol("Xd", n, m)}), W, None, VALUES["W"],
            lambda W_: (softmax(W_ @ X_) - Y_) @ X_.T / m, hessian, {"Xd": X_})


A_, B_ = VALUES["A"], VALUES["B"]
X0, Xs0 = rng.normal(size=(n, p)), rng.normal(size=(n, n)) + 3 * np.eye(n)
CASES = [
    ("xtAx", (x.T * A * x)[0, 0], x, None, VALUES["x"], lambda x_: (A_ + A_.T) @ x_, lambda x_: A_ + A_.T),
    ("tr-XtAX", sp.Trace(X.T * A * X), X, None, X0, lambda X_: (A_ + A_.T) @ X_,
     lambda X_: np.kron(np.eye(p), A_ + A_.T)),
    ("logdet", sp.log(sp.Determinant(Xs)), Xs, None, Xs0, lambda X_: np.linalg.inv(X_).T,
     lambda X_: -commutation(n, n) @ np.kron(np.linalg.inv(X_).T, np.linalg.inv(X_))),
    ("least-squares", sp.Trace((D * w - y).T * (D * w - y)), w, None, VALUES["w"],
     lambda w_: 2 * VALUES["D"].T @ (VALUES["D"] @ w_ - VALUES["y"]), lambda w_: 2 * VALUES["D"].T @ VALUES["D"]),
    ("tr-AXBXt", sp.Trace(A * X * B * X.T), X, None, X0, lambda X_: A_.T @ X_ @ B_.T + A_ @ X_ @ B_,
     lambda X_: np.kron(B_, A_.T) + np.kron(B_.T, A_)),
    _logistic(),
    _softmax_ce(),
]


def _env(case):
    extra = case[7] if len(case) > 7 else {}
    return {**VALUES, **extra}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hessian_is_the_book_form_and_the_derivative_of_the_gradient(case):
    name, f, var, where, point, grad, book = case[:7]
    d = derive.hessian_derivation(f, var, where)
    fn = d.numpy("gradient_and_hessian")
    env = _env(case)

    def call(v):
        kw = {str(s): env[str(s)] for s in d.plan()[0] if str(s) != str(var)}
        return fn(**kw, **{str(var): v})

    out = call(point)
    H = np.asarray(out["hessian"])
    assert np.allclose(H, book(point), rtol=1e-10, atol=1e-12), name
    assert np.allclose(fd_hessian(grad, point), H, rtol=1e-6, atol=1e-7), name
    assert np.allclose(out["gradient"], grad(point), rtol=1e-10, atol=1e-12), name
    assert np.allclose(H, H.T, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hvp_is_the_hessian_times_vec_V_without_a_kronecker_product(case):
    name, f, var, where, point, grad, book = case[:7]
    direction = sp.MatrixSymbol("V", *var.shape)
    d = derive.hvp_derivation(f, var, direction, where)
    assert not d.result.has(sp.KroneckerProduct, Commutation, Vec)
    assert "kron" not in d.source() and "commutation" not in d.source()
    v = rng.normal(size=var.shape)
    env = _env(case)
    kw = {str(s): env[str(s)] for s in d.plan()[0] if str(s) not in (str(var), "V")}
    got = d.numpy()(**kw, **{str(var): point, "V": v})
    assert np.allclose(vec(got), book(point) @ vec(v), rtol=1e-10, atol=1e-12), name


def test_the_hessian_of_a_textbook_case_reads_as_the_book_writes_it():
    text = derive.printing.text.text
    assert text(derive.hessian(sp.Trace(x.T * A * x), x)) in ("A + Aᵀ", "Aᵀ + A")
    assert text(derive.hessian(sp.Trace(X.T * A * X), X)) in ("I ⊗ (A + Aᵀ)", "I ⊗ (Aᵀ + A)")
    assert text(derive.hessian(sp.log(sp.Determinant(Xs)), Xs)) == "-(X⁻¹ ⊗ Xᵀ⁻¹) K"
    assert text(_logistic_hessian()) == "(1/5) Dᵀ diag((1 - a) ⊙ a) D"
    latex = derive.latex(derive.hessian(sp.log(sp.Determinant(Xs)), Xs))
    assert r"\otimes" in latex and "K_{" in latex


def _logistic_hessian():
    _, f, var, where, *_ = _logistic()
    return derive.hessian(f, var, where)


# at symbolic sizes, so that verify proves them exactly at width 2
k, q, r = (sp.Symbol(c, integer=True, positive=True) for c in "kqr")
Ak, Xk, Sk, xk = sp.MatrixSymbol("A", k, k), sp.MatrixSymbol("X", k, q), sp.MatrixSymbol("X", k, k), sp.MatrixSymbol("x", k, 1)
Dk, wk, yk, ak = sp.MatrixSymbol("D", r, k), sp.MatrixSymbol("w", k, 1), sp.MatrixSymbol("y", r, 1), sp.MatrixSymbol("a", r, 1)
SYMBOLIC = {
    "xtAx": (sp.Trace(xk.T * Ak * xk), xk, None),
    "tr-XtAX": (sp.Trace(Xk.T * Ak * Xk), Xk, None),
    "logdet": (sp.log(sp.Determinant(Sk)), Sk, None),
    "least-squares": (sp.Trace((Dk * wk - yk).T * (Dk * wk - yk)), wk, None),
    "logistic-regression": (-sp.Trace(yk.T * ak.applyfunc(sp.log) + (sp.OneMatrix(r, 1) - yk).T
                                      * (sp.OneMatrix(r, 1) - ak).applyfunc(sp.log)) / r, wk,
                            {ak: (Dk * wk).applyfunc(derive.sigmoid)}),
}


@pytest.mark.parametrize("name", SYMBOLIC)
def test_verify_checks_hessians_with_differences_symmetry_and_an_exact_proof(name):
    report = verify.check(derive.hessian_derivation(*SYMBOLIC[name]), trials=1)
    assert report.passed and any(r.check.startswith("exact") for r in report.rows), str(report)


def test_a_wrong_hessian_fails_every_check():
    d = derive.hessian_derivation(sp.Trace(X.T * A * X), X)
    wrong = type(d)(d.kind, d.f, d.wrt, d.where, d.gradient, d.first, d.steps, d.differential,
                    sp.KroneckerProduct(sp.Identity(p), A))   # A instead of A + Aᵀ
    report = verify.check(wrong, trials=1, exact_proof=True)
    assert {r.check for r in report.failures()} >= {"central differences", "exact (SymPy diff²)", "symmetry"}


# ---- symmetric matrices ---------------------------------------------------------------------------------------

def test_symmetric_gradient_is_sym_G_and_the_entries_form_is_G_plus_Gt_minus_diag():
    f = sp.Trace(A * S) + (x.T * S * S * x)[0, 0]
    G_sym = derive.lambdify([A, S, x], derive.gradient(f, S, symmetric=True))
    G_entries = derive.lambdify([A, S, x], derive.gradient(f, S, symmetric="entries"))
    s = rng.normal(size=(n, n))
    s = s + s.T
    x_ = VALUES["x"]
    plain = A_.T + x_ @ x_.T @ s + s @ x_ @ x_.T   # ∂f/∂S for an unconstrained S
    assert np.allclose(G_sym(A_, s, x_), (plain + plain.T) / 2)
    assert np.allclose(G_entries(A_, s, x_), plain + plain.T - np.diag(np.diag(plain)))

    def f_np(s_):
        return np.trace(A_ @ s_) + (x_.T @ s_ @ s_ @ x_).item()
    # sym(G) is the gradient in the space of symmetric matrices: df = tr(sym(G)ᵀ dS) for every symmetric dS
    dS = rng.normal(size=(n, n))
    dS = dS + dS.T
    numeric = (f_np(s + 1e-6 * dS) - f_np(s - 1e-6 * dS)) / 2e-6
    assert np.isclose(np.sum(G_sym(A_, s, x_) * dS), numeric, rtol=1e-7)
    # the entries form is the derivative by the independent entries S_ij, i ≤ j (each off-diagonal entry moves two)
    E = np.zeros((n, n))
    E[0, 1] = E[1, 0] = 1
    numeric = (f_np(s + 1e-6 * E) - f_np(s - 1e-6 * E)) / 2e-6
    assert np.isclose(G_entries(A_, s, x_)[0, 1], numeric, rtol=1e-7)


def test_symmetric_hessian_and_hvp_are_restricted_to_symmetric_matrices():
    f = sp.log(sp.Determinant(Sk))
    for d in (derive.hessian_derivation(f, Sk, symmetric=True),
              derive.hvp_derivation(f, Sk, sp.MatrixSymbol("V", k, k), symmetric=True)):
        report = verify.check(d, trials=1)
        assert report.passed and any(r.check.startswith("exact") for r in report.rows), str(report)


# ---- Jacobians and vector-Jacobian products -------------------------------------------------------------------

def test_jacobian_of_matrix_functions_is_the_kronecker_form():
    Xsq = Xs0
    cases = [
        (A * X * B, X, X0, np.kron(B_.T, A_)),
        (Xs.I, Xs, Xsq, -np.kron(np.linalg.inv(Xsq).T, np.linalg.inv(Xsq))),
        (X.applyfunc(derive.sigmoid), X, X0, np.diag(vec(sig(X0) * (1 - sig(X0))).ravel())),
        (X.T, X, X0, commutation(n, p)),
        (Xs * Xs, Xs, Xsq, np.kron(np.eye(n), Xsq) + np.kron(Xsq.T, np.eye(n))),
    ]
    for F, var, point, book in cases:
        J = derive.jacobian(F, var)
        args = sorted(J.free_symbols & {A, B, var}, key=str)
        kw = {"A": A_, "B": B_, str(var): point}
        got = derive.lambdify(args, J)(*[kw[str(s)] for s in args]) if args else \
            derive.lambdify([var], J + 0 * sp.ZeroMatrix(*J.shape))(point)
        assert np.allclose(got, book), F
        # and against central differences of F itself
        F_np = derive.lambdify(sorted(F.free_symbols & {A, B, var}, key=str), F)
        Fargs = sorted(F.free_symbols & {A, B, var}, key=str)
        numeric = fd_hessian(lambda v: F_np(*[v if s == var else kw[str(s)] for s in Fargs]), point, 1e-6)
        assert np.allclose(numeric, book, rtol=1e-6, atol=1e-8), F


def test_vjp_is_the_backward_pass_of_a_matrix_function():
    G = sp.MatrixSymbol("G", n, p)
    g = rng.normal(size=(n, p))
    assert np.allclose(derive.lambdify([A, B, G], derive.vjp(A * X * B, X, G))(A_, B_, g), A_.T @ g @ B_.T)
    J = np.kron(B_.T, A_)
    assert np.allclose(vec(A_.T @ g @ B_.T), J.T @ vec(g))
    with pytest.raises(ShapeError, match="cotangent"):
        derive.vjp(A * X * B, X, sp.MatrixSymbol("G", p, n))


# ---- generated code: every printer branch of the Kronecker algebra, run -------------------------------------------

def test_kronecker_commutation_diag_and_vec_print_as_array_code():
    v = rng.normal(size=(n, 1))
    col, col2, b11 = sp.MatrixSymbol("c", n, 1), sp.MatrixSymbol("h", n, 1), sp.MatrixSymbol("b", 1, 1)
    Vv, v2 = rng.normal(size=(n, p)), rng.normal(size=(n, 1))
    cases = [
        (sp.KroneckerProduct(B, A), [A, B], [A_, B_], np.kron(B_, A_)),
        (Commutation(n, p), [X], [X0], commutation(n, p)),
        (Vec(X), [X], [X0], vec(X0)),
        (sp.DiagMatrix(col), [col], [v], np.diag(v.ravel())),
        (A * sp.DiagMatrix(col), [A, col], [A_, v], A_ @ np.diag(v.ravel())),
        (sp.DiagMatrix(col) * A, [A, col], [A_, v], np.diag(v.ravel()) @ A_),
        (A * sp.DiagMatrix(col) * A.T, [A, col], [A_, v], A_ @ np.diag(v.ravel()) @ A_.T),
        # applied to a vec: never formed
        (sp.KroneckerProduct(B, A) * Vec(V), [A, B, V], [A_, B_, Vv], np.kron(B_, A_) @ vec(Vv)),
        (Commutation(n, p) * Vec(V), [V], [Vv], commutation(n, p) @ vec(Vv)),
        (sp.DiagMatrix(Vec(X)) * Vec(V), [X, V], [X0, Vv], np.diag(vec(X0).ravel()) @ vec(Vv)),
        (sp.KroneckerProduct(B, A) * Commutation(p, n) * Vec(V.T), [A, B, V], [A_, B_, Vv],
         np.kron(B_, A_) @ commutation(p, n) @ vec(Vv.T)),
        # a column is its own vec: (b ⊗ A) c = A c bᵀ for a 1 × 1 b, diag(h) c = h ⊙ c
        (sp.KroneckerProduct(b11, A) * col, [A, b11, col], [A_, np.array([[2.5]]), v], 2.5 * A_ @ v),
        (sp.DiagMatrix(col2) * col, [col, col2], [v, v2], v2 * v),
    ]
    for expr, args, values, expected in cases:
        f = derive.lambdify(args, expr)
        assert np.allclose(f(*values), expected), (expr, f.source)
        if expr.shape[1] == 1 and isinstance(expr, sp.MatMul):
            assert "kron(" not in f.source and "commutation(" not in f.source and "diag(" not in f.source, f.source


# ---- networks: Hessian-vector and Gauss–Newton products ---------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_specs(*tables(), max_depth=3, max_width=4), st.sampled_from(["hvp", "gauss_newton"]),
       st.integers(0, 2 ** 16))
def test_random_networks_hvp_and_gauss_newton_match_the_recursion(spec, kind, seed):
    net = derive.mlp(**spec)
    verify.assert_hvp_match(derive.backprop(net).numpy(kind), net, kind=kind, trials=1, seed=seed)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_networks(max_blocks=2), st.sampled_from(["hvp", "gauss_newton"]))
def test_random_block_networks_hvp_and_gauss_newton_match_the_reference(plain, kind):
    net = build(plain)
    verify.assert_hvp_match(derive.backprop(net).numpy(kind), net, kind=kind, trials=1)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [
    dict(sizes=[2, 2, 2], activation="tanh", output="softmax", loss="softmax_ce"),
    dict(sizes=[2, 2, 1], activation="relu", output="sigmoid", loss="bce", layout="WtA", weight_decay=0.25),
], ids=["tanh-softmax", "relu-bce-WtA-decay"])
def test_network_hvp_is_proved_exactly_at_width_2(spec):
    report = verify.check_products(derive.backprop(derive.mlp(**spec)), trials=1, exact_proof=True)
    assert report.passed and sum(r.check.startswith("exact") for r in report.rows) == 4, str(report)


def test_the_exact_proof_fails_a_gauss_newton_product_given_as_the_hessian(monkeypatch):
    bp = derive.backprop(derive.mlp([2, 2, 1], activation="relu", output="sigmoid", loss="bce"))
    gauss_newton = bp.r_statements("gauss_newton")
    monkeypatch.setattr(type(bp), "r_statements", lambda self, kind="hvp": gauss_newton)
    rows = verify.second.exact_product_rows(bp)
    assert not all(r.passed for r in rows)


def test_assert_hvp_match_catches_an_r_pass_without_the_second_order_term():
    net = derive.mlp([3, 4, 2], activation="tanh", output="softmax", loss="softmax_ce")
    bp = derive.backprop(net)
    gn = bp.numpy("gauss_newton")   # the Hessian without its σ'' and R{W} terms is not the Hessian
    with pytest.raises(AssertionError, match="hvp mismatch"):
        verify.assert_hvp_match(gn, net)
    verify.assert_hvp_match(gn, net, kind="gauss_newton")
    with pytest.raises(AssertionError, match="gauss_newton mismatch"):
        verify.assert_hvp_match(bp.numpy("hvp"), net, kind="gauss_newton")


def _products(bp, arrays, rng):
    """(v, H v, G v) at random directions for a network of blocks."""
    V = {k: rng.normal(size=np.shape(arrays[k])) for k in (P.name for P in bp.network.parameters)}
    directions = {f"V_{k}": v for k, v in V.items()}
    return V, bp.numpy("hvp")(**arrays, **directions), bp.numpy("gauss_newton")(**arrays, **directions)


def test_gauss_newton_of_blocks_is_the_hessian_where_the_output_is_linear_and_semidefinite_where_the_loss_is_convex():
    # one linear convolution with half the squared error: the output is linear in K and b, so G = H exactly
    linear = derive.Network(2, [derive.Conv1D(3, 2, stride=2, padding=1)], layout="AW", samples=6)
    plain = linear.specification()
    arrays = verify.blocks.draw(plain, verify.blocks.shapes(plain, {}), rng)
    V, Hv, Gv = _products(derive.backprop(linear), arrays, rng)
    for k in V:
        assert np.allclose(Gv[k], Hv[k], rtol=1e-10, atol=1e-12), k
    # layer norm, two heads and a softmax output with cross-entropy: vᵀ G v ≥ 0, while vᵀ H v takes both signs
    block = derive.Network(4, [derive.LayerNorm(), derive.SelfAttention(2, heads=2), derive.Dense(3, "softmax")],
                           loss="softmax_ce", layout="AW", samples=5)
    plain = block.specification()
    bp = derive.backprop(block)
    signs = set()
    for trial in range(6):
        arrays = verify.blocks.draw(plain, verify.blocks.shapes(plain, {}), rng)
        V, Hv, Gv = _products(bp, arrays, rng)
        assert sum(np.sum(V[k] * Gv[k]) for k in V) >= -1e-12
        signs.add(np.sign(sum(np.sum(V[k] * Hv[k]) for k in V)))
    assert signs == {-1.0, 1.0}


def test_gauss_newton_is_positive_semidefinite_for_a_convex_loss():
    net = derive.mlp([2, 3, 2], activation="tanh", output="softmax", loss="softmax_ce", samples=4)
    gn = derive.backprop(net).numpy("gauss_newton")
    spec = verify.Spec.of(net)
    X, Y, params = verify.data.draw(spec, rng, verify.data.dimensions(net))
    for _ in range(5):
        V = {k: rng.normal(size=v.shape) for k, v in params.items()}
        Gv = gn(X=X, Y=Y, **params, **{f"V_{k}": v for k, v in V.items()})
        assert sum(np.sum(V[k] * Gv[k]) for k in V) >= -1e-12


# ---- bad input ---------------------------------------------------------------------------------------------------

def test_bad_input_names_what_is_wrong():
    with pytest.raises(ShapeError, match="direction"):
        derive.hvp(sp.Trace(X.T * A * X), X, sp.MatrixSymbol("V", p, n))
    with pytest.raises(InvalidArgument, match="symmetric='entries' is for gradients"):
        derive.hessian(sp.log(sp.Determinant(S)), S, symmetric="entries")
    with pytest.raises(InvalidArgument, match="symmetric must be one of"):
        derive.gradient(sp.Trace(S), S, symmetric="upper")
    with pytest.raises(ShapeError, match="square"):
        derive.gradient(sp.Trace(X.T * X), X, symmetric=True)
    with pytest.raises(InvalidArgument, match="scalar"):
        derive.jacobian(sp.Symbol("t") * A, sp.Symbol("t"))
    with pytest.raises(UnsupportedOperation, match="Kronecker"):
        derive.hessian(sp.Trace(sp.KroneckerProduct(X, X).T * sp.KroneckerProduct(X, X)), X)
    bp = derive.backprop(derive.mlp([2, 2, 1]))
    with pytest.raises(InvalidArgument, match="unknown program 'hessian'"):
        bp.numpy("hessian")


# ---- found by an adversarial pass ----------------------------------------------------------------------------------

def test_diag_of_a_row_vector_scales_rows_in_every_position():
    r, u, M = sp.MatrixSymbol("r", 1, n), sp.MatrixSymbol("u", n, 1), sp.MatrixSymbol("M", p, n)
    r0, u0, M0 = rng.normal(size=(1, n)), rng.normal(size=(n, 1)), rng.normal(size=(p, n))
    D = np.diag(r0.ravel())
    for expr, args, values, expected in [(sp.DiagMatrix(r), [r], [r0], D), (sp.DiagMatrix(r) * u, [r, u], [r0, u0], D @ u0),
                                         (M * sp.DiagMatrix(r), [M, r], [M0, r0], M0 @ D),
                                         (sp.DiagMatrix(r) * M.T, [M, r], [M0, r0], D @ M0.T)]:
        assert np.allclose(derive.lambdify(args, expr)(*values), expected), expr
    f = sp.Trace(X.T * sp.DiagMatrix(r) * X)   # its gradient, Hessian and HVP: 2 D X, I ⊗ 2D, 2 D V
    v = rng.normal(size=(n, p))
    assert np.allclose(derive.derivation(f, X).numpy()(r=r0, X=X0), 2 * D @ X0)
    assert np.allclose(derive.hessian_derivation(f, X).numpy()(r=r0, X=X0), np.kron(np.eye(p), 2 * D))
    assert np.allclose(derive.hvp_derivation(f, X, V).numpy()(r=r0, X=X0, V=v), 2 * D @ v)


def test_a_determinant_scaled_inverse_of_a_singular_matrix_is_refused_by_name():
    # the Hessian of det(XᵀX) is |XᵀX| times terms in (XᵀX)⁻¹: finite in the limit, not computable at rank 1
    Xr = sp.MatrixSymbol("X", 1, 2)
    d = derive.hessian_derivation(sp.Determinant(Xr.T * Xr), Xr)
    with pytest.raises(ValueError, match=r"Xᵀ X is singular to working precision"):
        d.numpy()(X=np.array([[0.3, -1.7]]))
    # and where it is regular, the Hessian of det is the derivative of |S| S⁻ᵀ
    S0 = Xs0
    H = derive.hessian_derivation(sp.Determinant(Xs), Xs).numpy()(X=S0)
    assert np.allclose(H, fd_hessian(lambda s: np.linalg.det(s) * np.linalg.inv(s).T, S0), rtol=1e-6, atol=1e-7)


def test_second_derivative_by_a_scalar_inside_matrices():
    t, b = sp.Symbol("t"), sp.MatrixSymbol("b", n, 1)
    f = sp.Trace(b.T * (A * A.T + t * sp.Identity(n)).I * b)
    b0 = rng.normal(size=(n, 1))

    def value(t_):
        return (b0.T @ np.linalg.inv(A_ @ A_.T + t_ * np.eye(n)) @ b0).item()
    got = derive.hessian_derivation(f, t).numpy()(A=A_, b=b0, t=0.7)
    assert np.isclose(got, (value(0.7 + 1e-4) - 2 * value(0.7) + value(0.7 - 1e-4)) / 1e-8, rtol=1e-5)


def test_two_arguments_of_one_name_are_refused_before_any_call():
    t, T = sp.Symbol("t"), sp.MatrixSymbol("t", 2, 2)
    with pytest.raises(InvalidArgument, match="two arguments are named t"):
        derive.derivation(t * sp.Trace(T) + sp.Trace(X.T * X), X).numpy()


@pytest.mark.parametrize("name", ["block-transformer", "block-conv1d", "block-recurrent", "second-mlp-r-recursion"])
def test_the_examples_products_match_verify(name):
    from derive.cli.examples import EXAMPLES
    bp = EXAMPLES[name].derive()
    for kind in ("hvp", "gauss_newton"):
        report = verify.check_products(bp, kind, trials=1)
        assert report.passed and report.rows, str(report)
