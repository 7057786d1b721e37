"""No silently wrong number: each class of bug a hostile but fair user found, pinned by a test that would have caught
it — printed code against NumPy written by hand, names that look like internal ones, inputs of the wrong shape or
type, assumptions about the data, and the command line's errors and files."""
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import derive
import verify
from derive.cli.main import main
from verify import central_difference, relative_error

n = sp.Symbol("n", integer=True, positive=True)
x = sp.Symbol("x")
X3, A3, B3 = (sp.MatrixSymbol(k, 3, 3) for k in "XAB")
rng = np.random.default_rng(0)
POSITIVE = rng.uniform(0.5, 2.0, size=(3, 3))
NORMAL, OTHER = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))


def _close(a, b, tol=1e-10):
    return relative_error(np.broadcast_to(np.asarray(a, dtype=float), np.shape(b)), b) < tol


# --- the printer -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [sp.Rational(3, 2), sp.Rational(-1, 2), sp.Rational(1, 3), -1, -2])
def test_rational_and_negative_powers_print_as_powers(p):
    """X ** 3/2 is (X ** 3)/2 in Python: the exponent is parenthesised (and d√X = ½ X^∘(−½) ⊙ dX with it)."""
    f = derive.lambdify([X3], HadamardPower(X3, p))
    assert _close(f(POSITIVE), POSITIVE ** float(p))
    G = derive.gradient(sp.Trace(sp.OneMatrix(3, 3) * X3.applyfunc(sp.sqrt)), X3)
    assert _close(derive.lambdify([X3], G)(POSITIVE), 0.5 / np.sqrt(POSITIVE))


@pytest.mark.parametrize("activation, sigma", [
    (sp.Lambda(x, sp.asinh(x)), np.arcsinh), (sp.Lambda(x, sp.sqrt(x ** 2 + 1)), lambda z: np.sqrt(z ** 2 + 1))])
def test_custom_activations_with_fractional_powers_in_their_derivative(activation, sigma):
    """asinh' = (x² + 1)^(−½): 30 of 87 random networks with such activations were wrong before the fix."""
    net = derive.mlp([3, 4, 2], activation=activation, loss="half_sse")
    report = verify.check(derive.backprop(net), exact_proof=False)
    assert report.passed, str(report)


@pytest.mark.parametrize("place, numpy", [
    (lambda E: E.T, lambda e: e.T),
    (lambda E: E * A3, lambda e: e @ OTHER),
    (lambda E: A3 * E, lambda e: OTHER @ e),
    (lambda E: HadamardPower(E, 2), lambda e: e ** 2),
    (lambda E: HadamardProduct(E, A3), lambda e: e * OTHER),
    (lambda E: sp.MatMul(2, E), lambda e: 2 * e),
    (lambda E: sp.MatMul(-1, E), lambda e: -e),
])
def test_compound_elementwise_bodies_in_every_operand_position(place, numpy):
    """exp(X) − X applied elementwise prints as a sum: parenthesised as an operand of @, .T, **, * and −."""
    E = X3.applyfunc(sp.Lambda(x, sp.exp(x) - x))
    got = derive.lambdify([X3, A3], place(E))(NORMAL, OTHER)
    assert _close(got, numpy(np.exp(NORMAL) - NORMAL))


def test_a_subtracted_sum_keeps_its_parentheses_and_a_scaled_trace_is_one_value():
    """C − (A + B) and tr(2AB)²: found by the fuzzer, printed as C − A + B and 2·tr(AB)² before."""
    f = derive.lambdify([A3, B3, X3], sp.MatAdd(X3, sp.MatMul(-1, sp.MatAdd(A3, B3))))
    assert _close(f(NORMAL, OTHER, POSITIVE), POSITIVE - (NORMAL + OTHER))
    g = derive.lambdify([A3, B3], sp.Trace(sp.MatMul(2, A3, B3)) ** 2)
    assert np.isclose(g(NORMAL, OTHER), np.trace(2 * NORMAL @ OTHER) ** 2)


def test_sums_with_all_ones_matrices_keep_their_shape():
    """1_{3×4} + b 1ᵀ is 3×4: the array API broadcast of 1 + b would give 3×1."""
    b = sp.MatrixSymbol("b", 3, 1)
    got = derive.lambdify([b], sp.MatAdd(sp.OneMatrix(3, 4), sp.MatMul(b, sp.OneMatrix(1, 4))))(np.ones((3, 1)))
    assert got.shape == (3, 4) and np.all(got == 2)


def test_entry_picks_steps_and_maxima_print_as_code():
    """∂(X_01 tr X)/∂X at a symbolic size needs E_01 (was xp.fromfunction); Max and H of a scalar (was invalid code)."""
    X = sp.MatrixSymbol("X", n, n)
    G = derive.derivation(X[0, 1] * sp.Trace(X), X).numpy()(X=NORMAL)
    expected = NORMAL[0, 1] * np.eye(3)
    expected[0, 1] += np.trace(NORMAL)
    assert _close(G, expected)
    for f, value in [(sp.Max(sp.Trace(X3), 0) * sp.Trace(X3), lambda v: max(np.trace(v), 0) * np.trace(v)),
                     (sp.Heaviside(sp.Trace(X3) - 1) * sp.Trace(X3 * X3), lambda v: (np.trace(v) > 1) * np.trace(v @ v))]:
        d = derive.derivation(f, X3)
        for v in (POSITIVE, -POSITIVE):
            assert np.isclose(d.numpy("value")(X=v), value(v))
            assert _close(d.numpy()(X=v), central_difference(lambda X: value(X), {"X": v}, "X"), 1e-6)


def test_determinant_gradient_is_the_adjugate_and_log_det_of_a_negative_determinant_is_nan():
    """∂|X|/∂X = adj(X)ᵀ is finite at a singular X (det · inv raised LinAlgError); log det X is nan where det X < 0
    (slogdet alone gives log|det X|, another function)."""
    singular = np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])
    adjugate_T = np.array([[4.0, 4, -4], [-2, -2, 2], [0, 0, 0]])
    assert _close(derive.derivation(sp.Determinant(X3), X3).numpy()(X=singular), adjugate_T, 1e-12)
    value = derive.derivation(sp.log(sp.Determinant(X3)), X3).numpy("value")
    assert np.isnan(value(X=np.diag([-1.0, 1, 1]))) and np.isclose(value(X=2 * np.eye(3)), 3 * np.log(2))


@pytest.mark.parametrize("function", [sp.floor, sp.Function("g")])
def test_functions_without_a_derivative_are_refused_by_name(function):
    with pytest.raises(derive.UnsupportedOperation, match=getattr(function, "__name__", "g")):
        derive.gradient(function(sp.Trace(X3)), X3)


def test_abs_of_a_trace_and_sums_that_are_no_matrix_product():
    """|tr X|' = sign(tr X) I; Σ_i X_ii² at a symbolic size is refused by name (SymPy raised ValueError inside)."""
    G = derive.lambdify([X3], derive.gradient(sp.Abs(sp.Trace(X3)), X3))(-POSITIVE)
    assert _close(G, -np.eye(3))
    X, i = sp.MatrixSymbol("X", n, n), sp.Symbol("i", integer=True)
    with pytest.raises(derive.UnsupportedOperation, match="Sum"):
        derive.gradient(sp.Sum(X[i, i] ** 2, (i, 0, n - 1)), X)


# --- names ------------------------------------------------------------------------------------------------------

def test_user_names_that_look_like_internal_ones():
    """A scalar _h0 or _c0 (the Hadamard simplifier's atoms), matrices _t0 (a temporary), xp, namespace, sigmoid,
    lambda, check_shapes, and a matrix n beside a size n: each keeps its meaning."""
    h, c = sp.Symbol("_h0"), sp.Symbol("_c0")
    X = sp.MatrixSymbol("X", n, n)
    f = sp.Trace(sp.OneMatrix(n, n) * HadamardProduct(X.applyfunc(sp.tanh), X)) * h + c * sp.Trace(X)
    d = derive.derivation(f, X)
    got = d.numpy()(X=NORMAL, _h0=0.7, _c0=-1.3)
    value = lambda X: 0.7 * np.sum(np.tanh(X) * X) - 1.3 * np.trace(X)  # noqa: E731
    assert _close(got, central_difference(value, {"X": NORMAL}, "X"), 1e-6)
    names = ["_t0", "xp", "namespace", "sigmoid", "lambda", "check_shapes", "n", "_dtype"]
    M = [sp.MatrixSymbol(k, n, n) for k in names]
    f = sp.Trace(sp.MatMul(*M[:4]) + sp.MatMul(*M[4:]).applyfunc(derive.sigmoid) * M[0])
    values = {k: rng.normal(size=(3, 3)) / 2 for k in names}
    got = derive.derivation(f, M[0]).numpy("value")(**values)
    v = values
    s = 1 / (1 + np.exp(-(v["lambda"] @ v["check_shapes"] @ v["n"] @ v["_dtype"])))
    assert np.isclose(got, np.trace(v["_t0"] @ v["xp"] @ v["namespace"] @ v["sigmoid"] + s @ v["_t0"]))


@pytest.mark.parametrize("size", ["X", "W1", "delta2", "m"])
def test_network_sizes_named_like_its_matrices_are_refused(size):
    sizes = [3, size, 2] if size != "m" else [3, 4, 2]
    if size == "m":  # the number of samples may be m (the default); only a matrix's name is refused
        derive.mlp(["m", 4, 2])
        return
    with pytest.raises(ValueError, match=f"size '{size}' has the name of one of the network's matrices"):
        derive.mlp(sizes)


# --- inputs of generated functions ------------------------------------------------------------------------------

def _net_function():
    net = derive.mlp([3, 4, 2], activation="tanh", loss="half_sse", samples=5)
    f = derive.backprop(net).numpy()
    X, Y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=(4, 1)), "W2": rng.normal(size=(2, 4)),
              "b2": rng.normal(size=(2, 1))}
    return f, X, Y, params


@pytest.mark.parametrize("change, error, message", [
    (dict(X=np.ones((6, 5))), ValueError, r"X: expected shape \(3, 5\), got \(6, 5\)"),
    (dict(b1=np.ones((4, 5))), ValueError, r"b1: expected shape \(4, 1\), got \(4, 5\)"),
    (dict(Y=np.ones((1, 5))), ValueError, r"Y: expected shape \(2, 5\), got \(1, 5\)"),
    (dict(X=np.ones(3)), ValueError, r"X: expected a 2-D array of shape \(3, 5\), got shape \(3,\)"),
    (dict(X="matrix"), TypeError, r"X: numpy.matrix is not supported"),
    (dict(W1=np.ones((4, 3), dtype=bool)), TypeError, r"W1: an array of bool"),
    (dict(W1=np.ones((4, 3), dtype=complex)), TypeError, r"W1: an array of complex128"),
    (dict(W1=np.ones((4, 3), dtype=object)), TypeError, r"W1: an array of object"),
])
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_generated_functions_check_their_inputs(change, error, message):
    f, X, Y, params = _net_function()
    if isinstance(change.get("X"), str):   # numpy.matrix: its * is the matrix product
        change = {"X": np.matrix(np.ones((3, 5)))}
    with pytest.raises(error, match=message):
        f(**{"X": X, "Y": Y, **params, **change})


@pytest.mark.parametrize("bad, got", [(1.5, "float 1.5"), (None, "NoneType None"), ([[1.0, 2.0]], r"list \[\[1.0, 2.0\]\]"),
                                      (3, "int 3")])
def test_a_number_or_none_for_a_matrix_names_the_argument(tmp_path, bad, got):
    """A Python float or None where a matrix is expected raised AttributeError: 'float' object has no attribute
    'shape' (a list: array_api_compat's unnamed TypeError), from the derivation's code, the network's and the module's."""
    f, X, Y, params = _net_function()
    with pytest.raises(TypeError, match=rf"W1: expected a 2-D array of shape \(4, 3\), got {got}"):
        f(X=X, Y=Y, **{**params, "W1": bad})
    with pytest.raises(TypeError, match=rf"X: expected a 2-D array of shape \(3, 5\), got {got}"):
        f(X=bad, Y=Y, **params)
    d = derive.derivation(sp.Trace(A3 * X3), X3)
    with pytest.raises(TypeError, match=rf"A: expected a 2-D array of shape \(3, 3\), got {got}"):
        d.numpy()(A=bad, X=NORMAL)
    with pytest.raises(TypeError, match=rf"X: expected a 2-D array of shape \(n, n\), got {got}"):
        derive.derivation(sp.Trace(Xn * Xn), Xn).numpy()(X=bad)   # the only matrix: no array to take a library from
    (tmp_path / "standalone.py").write_text(d.module())
    sys.path.insert(0, str(tmp_path))
    try:
        import standalone
        with pytest.raises(TypeError, match=rf"A: expected a 2-D array of shape \(3, 3\), got {got}"):
            standalone.gradient(A=bad, X=NORMAL)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("standalone", None)


def test_integer_inputs_are_computed_in_floating_point_and_scalars_are_numbers():
    """X @ X of int8 overflowed in int8 (3·(X²)ᵀ came out as −36 for 1500); a scalar given as an array broadcast;
    a size given as an argument was overwritten by the shapes."""
    X = sp.MatrixSymbol("X", n, n)
    xi = np.array([[20, 10], [10, 20]], dtype=np.int8)
    assert _close(derive.derivation(sp.Trace(X ** 3), X).numpy()(X=xi), 3 * (xi.astype(float) @ xi).T)
    a = sp.Symbol("a")
    g = derive.derivation(a * sp.Trace(X.T * X), X).numpy()
    assert _close(g(a=np.float64(2), X=np.eye(2)), 4 * np.eye(2))
    for bad in (np.array([1.0, 2.0]), "2", 1j, True):
        with pytest.raises(TypeError, match="a: expected a real number"):
            g(a=bad, X=np.eye(2))
    with pytest.raises(ValueError, match=r"X: expected shape \(n, n\) with n = 5 from the argument n"):
        derive.lambdify([X, n], n * X)(np.ones((2, 2)), 5)
    # a size that is an argument and sizes an array the code builds: a whole number, or an error naming it (a
    # fraction reached xp.ones as a shape)
    m = sp.Symbol("m", integer=True, positive=True)
    ones = derive.lambdify([X, m], X * sp.OneMatrix(n, m))
    assert _close(ones(np.eye(2), np.int64(3)), np.ones((2, 3)))
    for bad in (0.92, 3.0, True, "3"):
        with pytest.raises(TypeError, match="the argument m: the size m must be an integer"):
            ones(np.eye(2), bad)


def test_symbolic_sizes_are_bound_consistently_and_must_be_positive():
    net = derive.mlp(["n0", "n1", 2], activation="tanh", loss="half_sse")
    f = derive.backprop(net).numpy()
    args = dict(X=np.ones((3, 5)), Y=np.ones((2, 5)), W1=np.ones((4, 3)), b1=np.ones((4, 1)), W2=np.ones((2, 4)),
                b2=np.ones((2, 1)))
    assert f(**args)["W1"].shape == (4, 3)
    with pytest.raises(ValueError, match=r"W1: expected shape \(n1, n0\) with n0 = 3 from X, got \(4, 2\)"):
        f(**{**args, "W1": np.ones((4, 2))})
    with pytest.raises(ValueError, match=r"size m = 0; every size must be at least 1"):
        f(**{**args, "X": np.ones((3, 0)), "Y": np.ones((2, 0))})
    d = derive.derivation(sp.Trace(X3 * A3), X3)
    with pytest.raises(ValueError, match=r"X: expected shape \(3, 3\), got \(2, 2\)"):
        d.numpy()(X=np.ones((2, 2)), A=np.ones((3, 3)))


# --- symbolic sizes must conform exactly ------------------------------------------------------------------------

m = sp.Symbol("m", integer=True, positive=True)
Xn, An, Bn, Vn = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, m), sp.MatrixSymbol("B", n, m), \
    sp.MatrixSymbol("V", n, n)
Zn = sp.MatrixSymbol("Z", n, n)
ENTRIES = {
    "gradient": lambda f, where=None: derive.gradient(f, Xn, where=where),
    "gradients": lambda f, where=None: derive.gradients(f, [Xn], where=where),
    "derivation": lambda f, where=None: derive.derivation(f, Xn, where=where),
    "hessian": lambda f, where=None: derive.hessian(f, Xn, where=where),
    "hvp": lambda f, where=None: derive.hvp(f, Xn, Vn, where=where),
    "jacobian": lambda f, where=None: derive.jacobian(f * sp.Identity(n), Xn, where=where),
    "vjp": lambda f, where=None: derive.vjp(f * sp.Identity(n), Xn, Vn, where=where),
    "lambdify": lambda f, where=None: derive.lambdify([Xn, An, Bn], f),
}
MISMATCHED = [   # (f, the message): m ≠ n as symbols, whatever values they may take
    (sp.Trace(An * Xn), r"product A\*X does not conform: A has shape \(n, m\) and X has shape \(n, n\)"),
    (sp.Trace(Xn * An.T * Xn + sp.MatAdd(Xn, An) * An.T),
     r"sum A \+ X does not conform: A has shape \(n, m\) and X has shape \(n, n\)"),
    (sp.Trace(sp.HadamardProduct(Xn, An) * An.T), r"Hadamard product .* does not conform: .* has shape \(n, m\) and X has shape \(n, n\)"),
    (sp.Trace(Xn * An), r"trace of X\*A: X\*A has shape \(n, m\), not square"),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("f, message", MISMATCHED)
def test_symbolic_sizes_that_disagree_are_refused(entry, f, message):
    """tr(A X) with A n×m and X n×n gave ∂/∂X = Aᵀ (m×n) for an n×n X, and code that failed with NumPy's broadcast
    message: SymPy checks the sizes of a product only when they are integers."""
    with pytest.raises(derive.ShapeError, match=message):
        ENTRIES[entry](f)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e != "lambdify"])
def test_symbolic_sizes_that_disagree_are_refused_in_definitions(entry):
    with pytest.raises(derive.ShapeError, match=r"definition of Z: the product A\*X does not conform: A has shape \(n, m\)"):
        ENTRIES[entry](sp.Trace(Zn), where={Zn: An * Xn})


def test_sizes_the_user_makes_equal_conform():
    """m = n said by substituting one for the other: ∂ tr(A X)/∂X = Aᵀ, against NumPy."""
    G = derive.gradient(sp.Trace(An * Xn).subs(m, n), Xn)
    a = rng.normal(size=(3, 3))
    assert _close(derive.lambdify([An.subs(m, n)], G)(a), a.T)


# --- assumptions, strings and definitions -----------------------------------------------------------------------

def test_strings_are_never_evaluated():
    """sympify runs the text it is given (a string with __import__('os') ran): f, where and λ refuse strings."""
    with pytest.raises(TypeError, match="f must be a SymPy expression, got str"):
        derive.gradient("__import__('os').system('echo hacked')", X3)
    with pytest.raises(TypeError, match="where"):
        derive.gradient(sp.Trace(A3), X3, where={A3: "X*X"})
    with pytest.raises(ValueError, match="weight_decay must be a number"):
        derive.mlp([2, 3], weight_decay="__import__('os')")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1j, -0.5, sp.I])
def test_weight_decay_must_be_finite_real_and_non_negative(value):
    with pytest.raises(ValueError, match="weight_decay"):
        derive.mlp([2, 3], weight_decay=value)


def test_where_definitions_are_names_without_cycles():
    X, Z, A, B = (sp.MatrixSymbol(k, n, n) for k in "XZAB")
    with pytest.raises(ValueError, match="circular: Z -> Z"):
        derive.gradient(sp.Trace(Z), X, where={Z: Z + X})
    with pytest.raises(ValueError, match="circular: A -> B -> Z -> A"):
        derive.gradient(sp.Trace(Z), X, where={Z: X + A, A: B.T, B: Z * X})
    with pytest.raises(ValueError, match="is not a name"):
        derive.gradient(sp.Trace(Z), X, where={X.T: A})


def test_where_definitions_in_any_order():
    """{Z2: tanh(Z1), Z1: X X}: computed in the order that needs (the generated code read Z1 before assigning it)."""
    X, Z1, Z2 = (sp.MatrixSymbol(k, 3, 3) for k in ("X", "Z1", "Z2"))
    d = derive.derivation(sp.Trace(Z2), X, where={Z2: Z1.applyfunc(sp.tanh), Z1: X * X})
    value = lambda X: np.trace(np.tanh(X @ X))  # noqa: E731
    assert np.isclose(d.numpy("value")(X=NORMAL), value(NORMAL))
    assert _close(d.numpy()(X=NORMAL), central_difference(value, {"X": NORMAL}, "X"), 1e-6)
    assert verify.check(d, trials=1).passed


def test_a_chain_of_elementwise_definitions_is_not_exponential():
    """Z_k = tanh(Z_{k−1}): (1 − Z²) products were expanded into 2^k terms (37 s at depth 15); depth 30 now derives
    and matches the chain rule written by hand (timings are in bench/engine.py)."""
    X = sp.MatrixSymbol("X", 3, 3)
    Z = [X] + [sp.MatrixSymbol(f"Z{k}", 3, 3) for k in range(1, 31)]
    G = derive.gradient(sp.Trace(Z[-1]), X, where={Z[k]: Z[k - 1].applyfunc(sp.tanh) for k in range(1, 31)})
    d = derive.derivation(sp.Trace(Z[-1]), X, where={Z[k]: Z[k - 1].applyfunc(sp.tanh) for k in range(1, 31)})
    z, expected = NORMAL, np.eye(3)   # ∂ tr Z/∂Z = I, then ⊙ (1 − Z_k²) down the chain
    chain = []
    for _ in range(30):
        z = np.tanh(z)
        chain.append(1 - z ** 2)
    for factor in chain:
        expected = expected * factor
    assert G.free_symbols and _close(d.numpy()(X=NORMAL), expected)


def test_deeply_nested_functions_derive():
    """100 nested elementwise functions: hashes and shapes prepared iteratively (RecursionError before)."""
    E = X3
    for k in range(100):
        E = E.applyfunc(sp.tanh if k % 2 else sp.sin)
    d = derive.derivation(sp.Trace(E), X3)
    v = 0.1 * np.eye(3)

    def value(X):
        for k in range(100):
            X = np.tanh(X) if k % 2 else np.sin(X)
        return np.trace(X)
    assert _close(d.numpy()(X=v), central_difference(value, {"X": v}, "X"), 1e-6)


# --- verify -----------------------------------------------------------------------------------------------------

def test_verify_checks_custom_activations_and_derivations():
    """Spec.of read activation names (KeyError 'x**3 + x'); a Derivation has no network (AttributeError)."""
    net = derive.mlp([2, 3, 2], activation=sp.Lambda(x, x ** 3 + x))
    assert verify.check(derive.backprop(net)).passed
    X = sp.MatrixSymbol("X", n, n)
    report = verify.check(derive.derivation(sp.Trace(sp.OneMatrix(n, n) * X.applyfunc(sp.log)), X))
    assert report.passed and {r.check for r in report.rows} == {"SymPy, entrywise", "finite differences"}


def test_a_report_without_checks_does_not_pass():
    with pytest.raises(ValueError, match="trials must be at least 1"):
        verify.check(derive.backprop(derive.mlp([2, 2])), trials=0)
    assert not verify.Report("empty", "float64", 0, {}).passed


# --- the command line -------------------------------------------------------------------------------------------

def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["expr", "tr(X)/0", "--wrt", "X", "--shape", "X=3x3"], "division by zero"),
    (["expr", "tr(X)*" + "9" * 400, "--wrt", "X", "--shape", "X=3x3"], "number with 400 digits"),
    (["expr", "tr(X^100000)", "--wrt", "X", "--shape", "X=3x3"], "exponent 100000 is too large"),
    (["expr", "(" * 300 + "tr(X)" + ")" * 300, "--wrt", "X", "--shape", "X=3x3"], "nested more than 100 deep"),
    (["expr", "tr(X)", "--wrt", "X", "--shape", "X=0x3"], "a size must be between 1"),
    (["mlp", "3", "2", "--trials", "0", "--no-pdf"], "--trials 0: must be between 1 and 1000"),
    (["mlp", "3", "2", "--trials", "1000000", "--no-pdf"], "--trials 1000000"),
    (["mlp", "3", "2", "--weight-decay", "nan", "--no-pdf"], "--weight-decay: 'nan' is not a finite number"),
    (["mlp", "3", "2", "--name", "../../escape", "--no-pdf"], "name '../../escape'"),
    (["mlp", "3", "2", "--name", "/tmp/abs", "--no-pdf"], "name '/tmp/abs'"),
    (["mlp", "3", "2", "--name", "a\0b", "--no-pdf"], "name 'a\\x00b'"),
    (["mlp", "3", "2", "--activation", "nope"], "invalid choice: 'nope'"),
    (["mlp"], "the following arguments are required: sizes"),
])
def test_every_error_exits_2_with_one_line(capsys, tmp_path, argv, message):
    """One line, or for a syntax error one line and the expression with a caret under the position."""
    code, out, err = _cli(capsys, *argv, *(["--out", str(tmp_path)] if argv[0] == "mlp" and len(argv) > 1 else []))
    lines = err.count("\n") - (2 if "cannot parse" in err else 0)
    assert code == 2 and message in err and lines == 1 and "Traceback" not in err, err
    assert not (tmp_path.parent / "escape").exists()


def test_out_must_be_a_folder_and_specs_must_be_readable(capsys, tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    code, _, err = _cli(capsys, "mlp", "3", "2", "--out", str(file), "--no-pdf")
    assert code == 2 and "is a file, not a folder" in err
    spec = tmp_path / "bad.toml"
    spec.write_bytes(b'sizes = [3, 2]\nname = "\xff\xfe"\n')
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path), "--no-pdf")
    assert code == 2 and "cannot read" in err
    spec.write_text('sizes = [3, 2]\nname = "../../x"\n')
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and "name '../../x'" in err and not (tmp_path.parent / "x").exists()


def test_nothing_from_a_spec_reaches_latex_unescaped(capsys, tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text('sizes = [3, 2]\nname = "net"\n[notation]\nnames = { W = "\\\\input{/etc/passwd}" }\n')
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path), "--no-pdf")
    assert code == 2 and "notation names.W" in err and not (tmp_path / "net").exists()
    spec.write_text('sizes = [3, 2]\nname = "net"\n[notation]\nnames = { W = "\\\\Theta" }\n')
    assert _cli(capsys, "run", str(spec), "--out", str(tmp_path), "--no-pdf")[0] == 0
    assert r"\Theta^{(1)}" in (tmp_path / "net" / "derivation.tex").read_text()


def test_expr_draws_data_in_the_functions_domain(capsys):
    """sum(log(X)) was reported FAILED on a correct gradient (its data were N(0, 1), log of negatives)."""
    code, out, _ = _cli(capsys, "expr", "sum(log(X))", "--wrt", "X", "--shape", "X=3x3")
    assert code == 0 and "finite differences" in out and "FAILED" not in out


def test_expr_checks_large_inputs_along_random_directions(capsys):
    """A 300 × 300 X: the gradient is compared along random directions, not entry by entry (90,000 pairs of f)."""
    code, out, _ = _cli(capsys, "expr", "norm2(X)", "--wrt", "X", "--shape", "X=300x300")
    assert code == 0 and "finite differences: relative error" in out and "PASSED" in out


def test_verification_report_is_json_with_the_verdict(capsys, tmp_path):
    code, out, _ = _cli(capsys, "mlp", "3", "2", "--trials", "1", "--name", "tiny", "--out", str(tmp_path), "--no-pdf")
    report = json.loads((tmp_path / "tiny" / "verification.json").read_text())
    assert code == 0 and report["passed"] and len(report["rows"]) > 0


def test_subprocess_usage_errors_are_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "derive", "mlp", "--bogus"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "usage:" not in run.stderr


def test_latex_keeps_the_powers_of_functions():
    """SymPy prints f(x)² through _print_f(expr, exp=2): σ(x)² was typeset σ(x) and H(x)² raised TypeError."""
    for f, tex in [(derive.sigmoid, r"\sigma(x)^{2}"), (derive.relu, r"\operatorname{relu}(x)^{2}"),
                   (derive.softplus, r"\operatorname{softplus}(x)^{2}"), (sp.Heaviside, r"[x > 0]^{2}")]:
        assert derive.latex(f(x) ** 2) == tex


def test_a_hand_written_layer_norm():
    """Y = (X − μ) ⊙ (v + ε)^∘(−½) per column, μ and v the column mean and variance: its gradient has the
    fractional powers that printed as X ** -1/2 = (X ** −1)/2 before."""
    N, M = 4, 3
    X, A, D, V = (sp.MatrixSymbol(k, N, M) for k in "XADV")
    J, eps = sp.OneMatrix(N, N), sp.Rational(1, 100)
    where = {D: X - sp.MatMul(sp.Rational(1, N), J, X),
             V: sp.MatMul(sp.Rational(1, N), J, HadamardProduct(D, D))}
    Y = HadamardProduct(D, HadamardPower(V + eps * sp.OneMatrix(N, M), sp.Rational(-1, 2)))
    d = derive.derivation(sp.Trace(A.T * Y), X, where=where)
    a, x = rng.normal(size=(N, M)), rng.normal(size=(N, M))

    def value(X):
        centred = X - X.mean(axis=0)
        return np.sum(a * centred / np.sqrt((centred ** 2).mean(axis=0) + 0.01))
    assert _close(d.numpy()(X=x, A=a), central_difference(value, {"X": x}, "X"), 1e-6)


def test_no_string_reaches_sympify_through_functions_or_verify():
    with pytest.raises(TypeError, match="not strings"):
        derive.sigmoid("__import__('os').system('echo hacked')")
    with pytest.raises(TypeError, match="not strings"):
        derive.leaky_relu(x, "__import__('os')")
    from verify import exact
    net = derive.mlp([1, 1])
    s = lambda k: exact.symbol_matrix(k, 1, 1)  # noqa: E731
    with pytest.raises(sp.SympifyError):
        exact.explicit_loss(verify.Spec.of(net), s("x"), s("y"), {"W1": s("W1"), "b1": s("b1")},
                            weight_decay="__import__('os')")


def test_names_reach_latex_escaped(tmp_path):
    """A matrix named W}\\input{…} was written raw into the .tex; X_1_2 broke the HTML after the .tex was written."""
    M = sp.MatrixSymbol(r"W}\input{/etc/passwd}\iffalse{", 2, 2)
    assert r"\input{" not in derive.latex(sp.Trace(M * M))
    N = sp.MatrixSymbol("X_1_2", 2, 2)
    assert derive.latex(N.T * N) == r"\mathrm{X\_1\_2}^{\top} \mathrm{X\_1\_2}"
    derive.write(derive.derivation(sp.Trace(M * M), M), tmp_path, pdf=False)
    assert r"\input{/etc" not in (tmp_path / "derivation.tex").read_text()


def test_verify_derivations_that_do_not_depend_on_X_and_high_powers():
    """tr(X X⁻¹) = n: a zero gradient (the check crashed); tr(X¹⁶) evaluated by SymPy on numbers, not on symbolic
    entries (34 s before)."""
    X2 = sp.MatrixSymbol("X", 2, 2)
    assert verify.check(derive.derivation(sp.Trace(X2 * X2 ** -1), X2)).passed
    assert verify.check(derive.derivation(sp.Trace(X2 ** 16), X2), trials=1).passed


def test_cli_chained_exponents_spec_sizes_and_nothing_to_check(capsys, tmp_path):
    code, _, err = _cli(capsys, "expr", "tr(X^64^64)", "--wrt", "X", "--shape", "X=2x2")
    assert code == 2 and "exponent 4096 is too large" in err
    spec = tmp_path / "s.toml"
    spec.write_text('sizes = ["--loss=bce", "--output=sigmoid", 2, 2]\n')
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path), "--no-pdf")
    assert code == 2 and "neither a positive integer nor a name" in err
    code, out, _ = _cli(capsys, "expr", "sum(log(X-X))", "--wrt", "X", "--shape", "X=2x2")
    assert code == 0 and "numeric check skipped: no point found" in out


def test_transposes_never_evaluate_entries_into_sums():
    """(M⁻¹)ᵀ taken with SymPy's .T transposes deep into M with doit(): an entry (1ᵀ(X + X)1)_00 at a symbolic size
    became Σ_ij X_ij, printed as builtins.sum (a NameError in the generated code). Found by the fuzzer."""
    from sympy.matrices.expressions.matexpr import MatrixElement
    X, A, B = (sp.MatrixSymbol(k, n, n) for k in "XAB")
    entry = MatrixElement(sp.MatMul(sp.OneMatrix(1, n), sp.MatAdd(X, X), sp.OneMatrix(n, 1)), 0, 0)
    inner = sp.MatMul(sp.sin(entry), B.T).applyfunc(sp.tanh)
    M = sp.MatAdd(sp.MatMul(4, sp.Identity(n)), sp.MatMul(sp.Rational(3, 10), inner))
    d = derive.derivation(sp.Trace(A * sp.Inverse(M)), X)
    assert not d.gradient.has(sp.Sum)
    a, b, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3)) / 4

    def value(X):
        return np.trace(a @ np.linalg.inv(4 * np.eye(3) + 0.3 * np.tanh(np.sin(2 * X.sum()) * b.T)))
    assert _close(d.numpy()(X=x, A=a, B=b), central_difference(value, {"X": x}, "X"), 1e-6)


SMALL = 'name = "n"\ninputs = 2\nsamples = 3\n[[layers]]\nkind = "dense"\nunits = 2\n'


@pytest.mark.parametrize("link", ["n", "n/derivation.tex", "n/verification.json"])
def test_no_file_is_written_through_a_link_out_of_the_output_folder(capsys, tmp_path, link):
    spec, out, elsewhere = tmp_path / "s.toml", tmp_path / "out", tmp_path / "elsewhere"
    spec.write_text(SMALL)
    (out / "n").mkdir(parents=True)
    elsewhere.mkdir()
    target = elsewhere if link == "n" else elsewhere / "victim"
    if link == "n":
        (out / "n").rmdir()
    else:
        target.write_text("keep")
    (out / link).symlink_to(target)
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(out), "--no-pdf")
    assert code == 2 and err.count("\n") == 1 and f"{out / link}" in err and "symbolic link" in err, err
    assert sorted(p.name for p in elsewhere.iterdir()) == ([] if link == "n" else ["victim"])
    assert link == "n" or target.read_text() == "keep"


def test_examples_write_through_no_link_either(capsys, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "seed004-two-layer").symlink_to(tmp_path)
    code, _, err = _cli(capsys, "examples", "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and "seed004-two-layer" in err and "symbolic link" in err, err


def test_an_output_folder_that_is_a_file_is_named(capsys, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "n").write_text("x")
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and err.startswith("derive: error:") and f"{tmp_path / 'out' / 'n'}" in err, err
    assert "is a file" in err and "FileExistsError" not in err and err.count("\n") == 1


@pytest.mark.parametrize("layer, message", [
    ('kind = "recurrent"\nhidden = 2\nsteps = 1000000', "layers[0].steps = 1000000: must be between 1 and 100"),
    ('kind = "self_attention"\nd_k = 1\nheads = 100000', "layers[0].heads = 100000: must be between 1 and 100"),
    ('kind = "conv1d"\nchannels = 2\nwidth = 1000000000\npadding = 1000000000',
     "layers[0].width = 1000000000: must be between 1 and 100"),
    ('kind = "conv1d"\nchannels = 2\nwidth = 2\npadding = 1000000000',
     "layers[0].padding = 1000000000: must be between 0 and 100000"),
    ('kind = "conv1d"\nchannels = 2\nwidth = 2\nstride = 1000000000',
     "layers[0].stride = 1000000000: must be between 1 and 100000"),
    ('kind = "conv1d"\nchannels = 1000000000\nwidth = 2', "layers[0].channels = 1000000000: must be between 1 and "),
    ('kind = "self_attention"\nd_k = 1000000000', "layers[0].d_k = 1000000000: must be between 1 and 100000"),
    ('kind = "dense"\nunits = 0', "layers[0].units = 0: must be between 1 and 100000"),
    ('kind = "residual"\n[[layers.layers]]\nkind = "dense"\nunits = 1000000',
     "layers[0].layers[0].units = 1000000: must be between 1 and 100000"),
])
def test_spec_counts_are_bounded_and_named_by_their_path(capsys, tmp_path, layer, message):
    spec = tmp_path / "s.toml"
    spec.write_text(f"inputs = 2\nsamples = 3\n[[layers]]\n{layer}\n")
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and f"spec: {message}" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value", [("inputs", 0), ("samples", 10**9)])
def test_spec_sizes_are_named_by_their_key(capsys, tmp_path, key, value):
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL.replace(f"{key} = ", f"{key} = {value}\n# ", 1))
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and f"spec: {key} = {value}: must be between 1 and 100000" in err, err


def _nested(depth):
    layers = [derive.Dense(2, "tanh")]
    for _ in range(depth):
        layers = [derive.Residual(layers)]
    return layers


def test_residuals_nest_at_most_100_deep(capsys, tmp_path):
    assert verify.check(derive.backprop(derive.Network(2, _nested(100), samples=2)), trials=1).passed
    with pytest.raises(derive.errors.InvalidArgument, match="residual 101: residuals nest at most 100 deep"):
        derive.Network(2, _nested(300), samples=2)
    table, path = "", "layers"
    for _ in range(300):
        table += f"[[{path}]]\nkind = \"residual\"\n"
        path += ".layers"
    spec = tmp_path / "s.toml"
    spec.write_text(f"inputs = 2\nsamples = 2\n{table}[[{path}]]\nkind = \"dense\"\nunits = 2\n")
    code, _, err = _cli(capsys, "run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf")
    assert code == 2 and "blocks nest at most 100 deep" in err and "RecursionError" not in err, err
    assert "layers[0]" + ".layers[0]" * 100 in err


def test_write_replaces_a_link_in_the_folder_and_never_writes_through_it(tmp_path):
    (tmp_path / "out").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "out" / "derivation.txt").symlink_to(victim)
    n = sp.Symbol("n", integer=True, positive=True)
    X = sp.MatrixSymbol("X", n, n)
    derive.write(derive.derivation(sp.Trace(X * X), X), tmp_path / "out", pdf=False)
    assert victim.read_text() == "keep"
    written = tmp_path / "out" / "derivation.txt"
    assert not written.is_symlink() and "tr(X" in written.read_text()
