"""Generated code: equal to the recursion for every activation, loss and layout in float64 and float32, on
NumPy, array_api_strict and Dask; finite for extreme logits; the written module runs without SymPy."""
import subprocess
import sys
import warnings

import array_api_strict
import dask.array as da
import numpy as np
import pytest

import derive
from verify import Spec, data, recursion

CASES = [  # (hidden, output, loss): every activation, output and loss at least once
    ("sigmoid", "sigmoid", "bce"), ("tanh", "softmax", "softmax_ce"), ("relu", "identity", "half_sse"),
    ("leaky_relu", "softplus", "mse"), ("softplus", "tanh", "half_sse"), ("identity", "sigmoid", "softmax_ce"),
    ("tanh", "softmax", "half_sse"), ("relu", "softplus", "softmax_ce"),
]


def _inputs(net, seed=0, samples=5, dtype=np.float64):
    return data.draw(net, np.random.default_rng(seed), data.dimensions(net, 3, samples), dtype)


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


@pytest.mark.parametrize("layout", derive.LAYOUTS)
@pytest.mark.parametrize("hidden, output, loss", CASES)
def test_generated_equals_recursion_in_float64_and_float32(hidden, output, loss, layout):
    net = derive.mlp([3, 4, 3], activation=hidden, output=output, loss=loss, layout=layout, weight_decay=0.1)
    result, spec = derive.backprop(net), Spec.of(net)
    both = result.numpy("loss_and_gradients")
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        X, Y, params = _inputs(net, dtype=dtype)
        p64 = {k: v.astype(np.float64) for k, v in params.items()}
        reference = recursion.gradients(spec, X.astype(np.float64), Y.astype(np.float64), p64)
        got = both(X=X, Y=Y, **params)
        for name, G in reference.items():
            assert got[name].dtype == dtype, (name, got[name].dtype)
            assert _rel(got[name], G) < tol, (name, dtype)
        L = recursion.loss(spec, X.astype(np.float64), Y.astype(np.float64), p64)
        assert abs(float(got["loss"]) - L) <= tol * max(1.0, abs(L))


def test_runs_on_array_api_strict():
    net = derive.mlp([3, 4, 3], activation="tanh", output="softmax", loss="softmax_ce", layout="AW")
    f = derive.backprop(net).numpy()
    X, Y, params = _inputs(net)
    expected = f(X=X, Y=Y, **params)
    strict = {k: array_api_strict.asarray(v) for k, v in {"X": X, "Y": Y, **params}.items()}
    got = f(**strict)
    for name, G in expected.items():
        assert type(got[name]).__module__.startswith("array_api_strict")
        assert _rel(np.asarray(got[name]), G) < 1e-12


@pytest.mark.parametrize("layout", derive.LAYOUTS)
def test_one_pass_has_the_recursions_work_and_no_more(layout):
    """The loss-and-gradients code of an L-layer net does what the closed-form recursion does: L products forward,
    L for the ∂W, L − 1 for the δ (3L − 1 in all), each Z, A and δ assigned once, L activations, biases summed
    (no 1ᵀ-products, ones or diag matrices, no broadcast copies)."""
    L = 4
    net = derive.mlp([5, 6, 7, 6, 3], activation="tanh", output="softmax", loss="softmax_ce", layout=layout)
    source = derive.backprop(net).source("loss_and_gradients")
    body = source[source.index("def loss_and_gradients"):].split('"""')[-1]
    assert body.count("@") == 3 * L - 1, body
    for name in ("Z", "A", "delta"):
        for l in range(1, L + 1):
            assert body.count(f"    {name}{l} = ") == 1, (name, l)
    assert body.count("xp.tanh(") == L - 1 and body.count(" softmax(xp, Z4") == 1   # A4, for δ4 = (A4 − Y)/m
    assert body.count("log_softmax(xp, Z4") == 1                                    # the loss, from the logits
    assert body.count("xp.sum(delta") == L
    assert not any(word in body for word in ("ones(", "diag", "eye(", "broadcast_to"))


def _peak_bytes(fn):
    import tracemalloc
    fn()  # first-call caches (imports, namespace look-ups) are not the function's memory
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("activation, output, loss", [("tanh", "identity", "half_sse"),
                                                      ("relu", "softmax", "softmax_ce")])
def test_peak_memory_is_below_the_recursions(activation, output, loss):
    """Bytes, not time (tracemalloc counts NumPy's allocations exactly): each Z^(l), δ^(l) and A^(l) is freed
    after its last use (relu's mask is read off A), so a deep net's gradients need about half the memory of the
    recursion, which keeps every Z and A."""
    net = derive.mlp([32] * 9, activation=activation, output=output, loss=loss)
    f, spec = derive.backprop(net).numpy(), Spec.of(net)
    X, Y, params = _inputs(net, samples=128)
    generated = _peak_bytes(lambda: f(X=X, Y=Y, **params))
    reference = _peak_bytes(lambda: recursion.gradients(spec, X, Y, params))
    assert generated <= 0.6 * reference, (generated, reference)


def test_derivation_functions_value_gradient_and_module():
    """derive.derivation results compile like networks: ∂ log|X|/∂X = X⁻ᵀ (Cookbook eq. 57) with λ tr(AX) added
    (eq. 100: λAᵀ); a `where` intermediate (H = tanh(W X)) is computed once and matches central differences of
    the same f written directly in NumPy."""
    import sympy as sp

    from verify.numeric import central_difference
    n = sp.Symbol("n", integer=True, positive=True)
    X, A, W, H = (sp.MatrixSymbol(k, n, n) for k in "XAWH")
    lam = sp.Symbol("lambda")
    d = derive.derivation(sp.log(sp.det(X)) + lam * sp.Trace(A * X), X)
    rng = np.random.default_rng(0)
    x, a = rng.normal(size=(4, 4)) + 4 * np.eye(4), rng.normal(size=(4, 4))
    both = d.numpy("value_and_gradient")(X=x, A=a, **{"lambda": 0.5})
    assert np.isclose(both["f"], np.log(abs(np.linalg.det(x))) + 0.5 * np.trace(a @ x))
    assert np.allclose(both["X"], np.linalg.inv(x).T + 0.5 * a.T)
    assert np.allclose(d.numpy()(X=x, A=a, **{"lambda": 0.5}), both["X"])
    with pytest.raises(TypeError, match="missing \\['lambda'\\]"):
        d.numpy()(X=x, A=a)
    d = derive.derivation(sp.Trace(H.T * H), W, where={H: (W * X).applyfunc(sp.tanh)})
    w = rng.normal(size=(4, 4)) / 2
    G = d.numpy()(W=w, X=x)
    fd = central_difference(lambda W, X: np.sum(np.tanh(W @ X) ** 2), {"W": w, "X": x}, "W")
    assert _rel(G, fd) < 1e-8
    namespace = {}
    exec(d.module(), namespace)
    assert {"gradient", "value", "value_and_gradient"} <= set(namespace)
    assert np.isclose(namespace["value"](w, x), np.sum(np.tanh(w @ x) ** 2))


def test_integer_data_and_first_layer_give_float_gradients():
    """Integer X (pixel values) and even integer W1 are promoted as NumPy promotes them, not cast in place."""
    net = derive.mlp([3, 4, 2], activation="tanh")
    f, spec = derive.backprop(net).numpy(), Spec.of(net)
    rng = np.random.default_rng(0)
    X, W1 = rng.integers(0, 5, (3, 5)), rng.integers(-2, 3, (4, 3))
    Y, b1, W2, b2 = (rng.normal(size=s) for s in ((2, 5), (4, 1), (2, 4), (2, 1)))
    got = f(X=X, Y=Y, W1=W1, b1=b1, W2=W2, b2=b2)
    expected = recursion.gradients(spec, X.astype(float), Y, {"W1": W1.astype(float), "b1": b1, "W2": W2, "b2": b2})
    for name, G in expected.items():
        assert got[name].dtype == np.float64 and _rel(got[name], G) < 1e-12, name


def test_arrays_of_two_libraries_are_an_error():
    net = derive.mlp([3, 4, 2], activation="tanh")
    f = derive.backprop(net).numpy()
    X, Y, params = _inputs(net)
    params["W2"] = array_api_strict.asarray(params["W2"])
    with pytest.raises(TypeError, match="Multiple namespaces"):
        f(X=X, Y=Y, **params)


def _torch(values):
    torch = pytest.importorskip("torch")
    return {k: torch.from_numpy(v) for k, v in values.items()}, lambda a: a.numpy()


def _jax(values):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return {k: jax.numpy.asarray(v) for k, v in values.items()}, np.asarray


@pytest.mark.parametrize("library", [_torch, _jax])
@pytest.mark.parametrize("hidden, output, loss", CASES)
def test_runs_on_pytorch_and_jax_arrays(library, hidden, output, loss):
    """When installed (benchmark extras, not test dependencies): the same function on their arrays, and under
    jax.jit, equals the recursion in float64 and float32."""
    net = derive.mlp([3, 4, 3], activation=hidden, output=output, loss=loss, layout="AW", weight_decay=0.1)
    result, spec = derive.backprop(net), Spec.of(net)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        X, Y, params = _inputs(net, dtype=dtype)
        p64 = {k: v.astype(np.float64) for k, v in params.items()}
        reference = recursion.gradients(spec, X.astype(np.float64), Y.astype(np.float64), p64)
        arrays, back = library({"X": X, "Y": Y, **params})
        functions = [result.numpy("loss_and_gradients")]
        if library is _jax:
            import jax
            functions.append(jax.jit(lambda **kw: functions[0](**kw)))
        for f in functions:
            got = f(**arrays)
            for name, G in reference.items():
                assert back(got[name]).dtype == dtype, (name, back(got[name]).dtype)
                assert _rel(back(got[name]), G) < tol, (name, dtype)


def test_conv1d_gradients_run_on_jax_arrays():
    """The conv1d example's gradients (padding and a stride: rows put back by a helper that assigned in place, a
    TypeError on JAX's immutable arrays), eager and under jax.jit, equal verify's hand-written NumPy reference."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from derive.cli.examples import EXAMPLES
    from verify import blocks
    result = EXAMPLES["block-conv1d"].derive()
    spec = result.specification()["network"]
    arrays = blocks.draw(spec, blocks.shapes(spec, {}), np.random.default_rng(0))
    _, reference = blocks.loss_and_gradients(spec, arrays)
    f = result.numpy()
    on_jax = {k: jax.numpy.asarray(v) for k, v in arrays.items()}
    for g in (f, jax.jit(lambda **kw: f(**kw))):
        got = g(**on_jax)
        assert set(got) == set(reference)
        for name, G in reference.items():
            assert _rel(np.asarray(got[name]), G) < 1e-10, name


class _Frozen(np.ndarray):
    """An array that refuses item assignment with a TypeError, as JAX's do."""

    def __setitem__(self, key, value):
        raise TypeError("immutable array")


class _FrozenNumpy:
    """The array-API calls put makes, on arrays that cannot be assigned in place (JAX's case without JAX)."""

    float64 = np.float64

    @staticmethod
    def zeros(shape, dtype=None, device=None):
        return np.zeros(shape, dtype=dtype).view(_Frozen)

    concat, expand_dims, reshape, asarray = staticmethod(np.concatenate), staticmethod(np.expand_dims), \
        staticmethod(np.reshape), staticmethod(np.asarray)


@pytest.mark.parametrize("library", ["frozen", "jax"])
@pytest.mark.parametrize("axis, n, start, stride", [(0, 7, 0, 1), (0, 8, -1, 2), (1, 9, 1, 3), (0, 4, -2, 2)])
def test_put_on_immutable_arrays_places_the_rows_as_numpy_assignment_does(axis, n, start, stride, library):
    jnp = _FrozenNumpy if library == "frozen" else pytest.importorskip("jax.numpy")
    from derive.codegen.helpers import put
    m = np.random.default_rng(0).normal(size=(4, 3) if axis == 0 else (3, 4))
    expected = np.zeros((n, 3))
    for k, i in enumerate(range(start, start + 4 * stride, stride)):   # row k of m to row i, if inside
        if 0 <= i < n:
            expected[i] = m[k] if axis == 0 else m[:, k]
    got = np.asarray(put(jnp, jnp.asarray(m), axis, n, start, stride))
    assert np.array_equal(got, (expected if axis == 0 else expected.T).astype(got.dtype))   # JAX: float32 unless x64


def test_runs_on_dask_over_100000_samples_chunked():
    net = derive.mlp([4, 8, 3], activation="tanh", output="softmax", loss="softmax_ce", samples=100_000)
    f = derive.backprop(net).numpy("loss_and_gradients")
    X, Y, params = _inputs(net, samples=100_000)
    expected = f(X=X, Y=Y, **params)
    lazy = f(X=da.from_array(X, chunks=(4, 10_000)), Y=da.from_array(Y, chunks=(3, 10_000)),
             **{k: da.from_array(v) for k, v in params.items()})
    assert isinstance(lazy["W1"], da.Array)
    for name, G in expected.items():
        assert _rel(np.asarray(lazy[name].compute()), G) < 1e-10, name


def test_runs_on_a_dask_distributed_cluster():
    """The lazy gradients of a chunked dataset computed by two worker processes of a local cluster."""
    distributed = pytest.importorskip("distributed")
    net = derive.mlp([4, 8, 3], activation="softplus", output="sigmoid", loss="bce", samples=40_000)
    f = derive.backprop(net).numpy("loss_and_gradients")
    X, Y, params = _inputs(net, samples=40_000)
    expected = f(X=X, Y=Y, **params)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        lazy = f(X=da.from_array(X, chunks=(4, 5_000)), Y=da.from_array(Y, chunks=(3, 5_000)),
                 **{k: da.from_array(v) for k, v in params.items()})
        got = client.compute(lazy, sync=True)
        assert len(client.scheduler_info()["workers"]) == 2
    for name, G in expected.items():
        assert _rel(np.asarray(got[name]), G) < 1e-10, name


@pytest.mark.parametrize("dtype, top, tol", [(np.float64, 700, 1e-14), (np.float32, 80, 1e-6)])
def test_sigmoid_and_softplus_keep_full_relative_precision(dtype, top, tol):
    """σ(z) and softplus(z) for |z| from 1e-3 to 700: relative error against e^z / (1 + e^z) and log1p(e^z) in
    float64, exact to rounding for z ≤ 0 (1 / (1 + e^(−z)) and z + log1p(e^(−z)) above)."""
    import sympy as sp
    magnitudes = np.logspace(-3, np.log10(top), 50)
    z = np.concatenate([-magnitudes[::-1], [0.0], magnitudes]).astype(dtype)
    w = z.astype(np.float64)
    below, above = np.exp(np.minimum(w, 0)), np.exp(-np.maximum(w, 0))
    exact = {derive.sigmoid: np.where(w <= 0, below / (1 + below), 1 / (1 + above)),
             derive.softplus: np.where(w <= 0, np.log1p(below), w + np.log1p(above))}
    Z = sp.MatrixSymbol("Z", 1, len(z))
    for f, expected in exact.items():
        got = derive.lambdify([Z], Z.applyfunc(f))(z.reshape(1, -1))[0]
        assert got.dtype == dtype
        assert np.max(np.abs(got.astype(np.float64) / expected - 1)) < tol, f


@pytest.mark.parametrize("output, loss", [("sigmoid", "bce"), ("softmax", "softmax_ce"), ("softplus", "mse"),
                                          ("tanh", "half_sse"), ("sigmoid", "softmax_ce"),
                                          ("softplus", "softmax_ce")])
def test_extreme_logits_give_finite_results_and_no_warnings(output, loss):
    net = derive.mlp([3, 4], activation=output, loss=loss)
    result = derive.backprop(net)
    X = np.array([[1.0, -1.0], [0.5, 0.5], [-1.0, 1.0]])
    W = np.array([[1e3, 0, 0], [-1e3, 0, 0], [0, 1e3, 0], [0, 0, -1e3]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        out = result.numpy("loss_and_gradients")(X=X, Y=Y, W1=W, b1=np.zeros((4, 1)))
    assert all(np.all(np.isfinite(v)) for v in out.values())


def test_written_module_runs_without_sympy(tmp_path):
    net = derive.mlp([3, 4, 2], activation="relu", output="sigmoid", loss="bce")
    result = derive.backprop(net)
    derive.write(result, tmp_path, pdf=False)
    source = (tmp_path / "gradients.py").read_text()
    assert "sympy" not in source and "import numpy" not in source
    X, Y, params = _inputs(net)
    np.savez(tmp_path / "inputs.npz", X=X, Y=Y, **params)
    script = f"""
import sys, numpy as np
sys.modules["sympy"] = None          # any import of SymPy now fails
sys.path.insert(0, {str(tmp_path)!r})
import gradients
values = dict(np.load({str(tmp_path / 'inputs.npz')!r}))
out = gradients.loss_and_gradients(**values)
print(sorted(out), float(out["loss"]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    L = recursion.loss(Spec.of(net), X, Y, params)
    names, value = run.stdout.rsplit("] ", 1)
    assert abs(float(value) - L) < 1e-10 * max(1, abs(L)) and "'W1'" in names


def test_generic_expressions_use_solve_and_slogdet():
    import sympy as sp
    n = sp.Symbol("n", integer=True, positive=True)
    X, A = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, n)
    # ∂ tr(X⁻¹A)/∂X = −X⁻ᵀAᵀX⁻ᵀ (Cookbook eq. 124 with B = I): the leading inverse becomes a solve
    f = derive.lambdify([X, A], derive.gradient(sp.Trace(X.I * A), X))
    assert "solve(" in f.source
    logdet = derive.lambdify([X], sp.log(sp.det(X)))
    assert "slogdet(" in logdet.source
    rng = np.random.default_rng(0)
    x, a = rng.normal(size=(4, 4)) + 4 * np.eye(4), rng.normal(size=(4, 4))
    inv = np.linalg.inv(x)
    assert np.allclose(f(x, a), -(inv @ a @ inv).T)
    # ∂ tr(A X⁻¹ B)/∂X = −X⁻ᵀAᵀBᵀX⁻ᵀ (Cookbook eq. 124): both inverses multiply something, so no inv at all
    B = sp.MatrixSymbol("B", n, n)
    g = derive.lambdify([X, A, B], derive.gradient(sp.Trace(A * X.I * B), X))
    assert g.source.count("solve(") == 2 and "inv(" not in g.source
    b = rng.normal(size=(4, 4))
    assert np.allclose(g(x, a, b), -(inv @ b @ a @ inv).T)
    assert np.isclose(logdet(x), np.log(abs(np.linalg.det(x))))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_log_softplus_and_the_softplus_ratio_against_50_digits(dtype, tol):
    """The loss −y log softplus(z) and its δ = −y σ(z)/softplus(z) of a softplus output, from z = −1e3 to 1e3: full
    relative precision against mpmath at 50 digits (log(A) and A^∘(−1) ⊙ σ(Z) gave −inf and NaN below −745)."""
    import mpmath
    import sympy as sp

    from derive.core.functions import log_softplus, softplus_ratio
    mpmath.mp.dps = 50
    magnitudes = np.logspace(-3, 3, 60)
    z = np.concatenate([-magnitudes[::-1], [0.0], magnitudes]).astype(dtype)
    softplus = [mpmath.log1p(mpmath.exp(mpmath.mpf(float(v)))) for v in z]
    exact = {log_softplus: [float(mpmath.log(s)) for s in softplus],
             softplus_ratio: [float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v)))) / s) for v, s in zip(z, softplus)]}
    Z = sp.MatrixSymbol("Z", 1, len(z))
    for f, expected in exact.items():
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            got = derive.lambdify([Z], Z.applyfunc(f))(z.reshape(1, -1))[0]
        assert got.dtype == dtype
        expected = np.array(expected)
        assert np.max(np.abs(got.astype(np.float64) - expected) / np.abs(expected)) < tol, f


def test_module_has_one_description_and_short_docstrings_and_notes_where_a_form_is_not_obvious():
    """gradients.py repeated the network's description in every function and carried benchmark remarks."""
    import ast

    result = derive.backprop(derive.mlp([3, 4, 2], activation="relu", output="sigmoid", loss="bce"))
    module = result.module()
    tree = ast.parse(module)
    assert "Forward pass:" in ast.get_docstring(tree) and module.count("Forward pass:") == 1
    programs = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in result.PROGRAMS]
    assert [f.name for f in programs] == list(result.PROGRAMS)
    assert all("\n" not in ast.get_docstring(f) for f in programs)
    assert "µs" not in module
    loss = result.source("loss")
    assert "    # −[y log σ(z) + (1 − y) log(1 − σ(z))] = y softplus(−z) + (1 − y) softplus(z)\n    return " in loss
