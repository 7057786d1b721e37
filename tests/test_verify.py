"""verify: classic backprop bugs are caught, correct code passes; verify.check on every seed example
and random networks; exact proofs of the seeds' equivalent forms; clear messages for bad input."""
import json
import re

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings

import derive
import verify
from derive.cli.examples import EXAMPLES
from verify import exact
from verify.strategies import mlp_specs

from .networks import tables

BUGS = ["missing σ'", "W instead of Wᵀ", "σ'(A) instead of σ'(Z)", "bias averaged instead of summed",
        "missing 1/m", "missing weight decay", "A(l) instead of A(l-1)", "sign flip", "missing σ' in layer 1",
        "layers in the wrong order"]

ACT = {"sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
       "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
       "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0)}


def handwritten(activation, lam, bug=None):
    """A user's backprop for Z = W A + b 1ᵀ, ½‖A − Y‖² averaged over the m columns, + (λ/2)Σ‖W‖², with one bug."""
    f, fprime = ACT[activation]

    def backprop(X, Y, **p):
        L = sum(k.startswith("W") for k in p)
        A, Z = [X], []
        for l in range(1, L + 1):
            Z.append(p[f"W{l}"] @ A[-1] + p[f"b{l}"])
            A.append(f(Z[-1]))
        m = X.shape[1]
        scale = 1.0 if bug == "missing 1/m" else 1.0 / m
        deriv = (lambda l: fprime(A[l])) if bug == "σ'(A) instead of σ'(Z)" else (lambda l: fprime(Z[l - 1]))
        delta = scale * (A[L] - Y) * (1.0 if bug == "missing σ'" else deriv(L))
        grads = {}
        for l in range(L, 0, -1):
            A_prev = A[l] if bug == "A(l) instead of A(l-1)" else A[l - 1]
            grads[f"W{l}"] = delta @ A_prev.T + (0.0 if bug == "missing weight decay" else lam * p[f"W{l}"])
            grads[f"b{l}"] = (delta.mean(axis=1, keepdims=True) if bug == "bias averaged instead of summed"
                              else delta.sum(axis=1, keepdims=True))
            if l > 1:
                W = p[f"W{l}"] if bug == "W instead of Wᵀ" else p[f"W{l}"].T
                delta = (W @ delta) * (1.0 if bug == "missing σ'" or (bug == "missing σ' in layer 1" and l == 2)
                                       else deriv(l - 1))
        if bug == "sign flip":
            grads = {k: -v for k, v in grads.items()}
        if bug == "layers in the wrong order":   # the gradient of layer l stored as layer L + 1 − l's
            grads = {f"{k[0]}{L + 1 - int(k[1:])}": v for k, v in grads.items()}
        return grads

    return backprop


ARCHITECTURES = [([3, 3, 3], "sigmoid"), ([2, 4, 4, 2], "tanh"), ([4, 3, 3, 3, 1], "relu")]


@pytest.mark.parametrize("sizes, activation", ARCHITECTURES)
def test_correct_handwritten_backprop_passes(sizes, activation):
    net = derive.mlp(sizes, activation=activation, loss="half_sse", weight_decay=0.1)
    verify.assert_gradients_match(handwritten(activation, 0.1), net, trials=3)


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("sizes, activation", ARCHITECTURES)
def test_every_classic_bug_is_caught(sizes, activation, bug):
    if activation == "relu" and bug == "σ'(A) instead of σ'(Z)":
        pytest.skip("relu'(A) = relu'(Z) wherever Z ≠ 0: not a bug for relu")
    net = derive.mlp(sizes, activation=activation, loss="half_sse", weight_decay=0.1)
    with pytest.raises(AssertionError, match=r"W\d|b\d|raised"):
        verify.assert_gradients_match(handwritten(activation, 0.1, bug), net, trials=3, seed=1)


@pytest.mark.parametrize("bug, wrong, names", [
    ("missing σ'", "W1 b1 W2 b2", r"what this mistake gives: σ′ left out of δ"),
    ("missing σ' in layer 1", "W1 b1", r"what this mistake gives: σ′ left out of δ .*, in layer 1$"),
    ("σ'(A) instead of σ'(Z)", "W1 b1 W2 b2", r"what this mistake gives: σ′ of the activation A where σ′ of the "
                                              r"pre-activation Z belongs"),
    ("W instead of Wᵀ", "W1 b1", r"what this mistake gives: the weight not transposed in the backward pass"),
    ("missing 1/m", "W1 b1 W2 b2", r"what this mistake gives: the 1/m of the mean loss left out"),
    ("A(l) instead of A(l-1)", "W1 W2", r"what this mistake gives: the layer's output A⁽ˡ⁾ where its input A⁽ˡ⁻¹⁾"),
    ("layers in the wrong order", "W1 b1 W2 b2", r"W1 +wrong .*hint: it is the gradient of W2 \(the layers' "
                                                 r"gradients in the wrong order\?\)"),
    ("sign flip", "W1 b1 W2 b2", r"b2 +wrong .*hint: the sign is flipped"),
    ("bias averaged instead of summed", "b1 b2", r"b1 +wrong .*hint: .*constant factor 0.333333 ≈ 1/m"),
    ("missing weight decay", "W1 W2", r"W2 +wrong .*hint: the weight-decay term λW \(λ = 0.1\) is missing"),
])
def test_a_failure_is_a_table_of_every_parameter_naming_the_mistake(bug, wrong, names):
    net = derive.mlp([3, 3, 3], activation="sigmoid", loss="half_sse", weight_decay=0.1)
    with pytest.raises(AssertionError) as info:
        verify.assert_gradients_match(handwritten("sigmoid", 0.1, bug), net)
    message = str(info.value)
    head, *lines = message.splitlines()
    assert head.startswith(f"{', '.join(wrong.split())}: {len(wrong.split())} of 4 gradients differ"), message
    table = [line.split() for line in lines if line.startswith("  ")]
    assert table[0][:3] == ["parameter", "verdict", "worst"], message
    # every parameter a row: wrong where the bug reaches it, ok (with its worst entry, got and expected) elsewhere
    assert {row[0]: row[1] for row in table[1:]} == {k: "wrong" if k in wrong.split() else "ok"
                                                       for k in ("W1", "b1", "W2", "b2")}, message
    assert all(row[2].startswith("(") and len(row) >= 6 for row in table[1:]), message
    assert re.search(names, message, flags=re.M), message


def test_transposed_gradient_is_recognised():
    net = derive.mlp([2, 3], activation="sigmoid", loss="half_sse")
    correct = handwritten("sigmoid", 0.0)

    def transposed(**kw):
        return {k: v.T if k == "W1" else v for k, v in correct(**kw).items()}

    with pytest.raises(AssertionError, match=r"W1 +shape .*shape \(2, 3\), expected \(3, 2\): it is the transpose"):
        verify.assert_gradients_match(transposed, net)


def _good(**kw):
    return handwritten("sigmoid", 0.0)(**kw)


@pytest.mark.parametrize("broken, message", [
    (lambda **kw: {**_good(**kw), "W1": np.full_like(_good(**kw)["W1"], np.nan)}, r"W1 +non-finite .*6 non-finite entries"),
    (lambda **kw: {**_good(**kw), "b1": np.array([[np.inf], [0.0], [0.0]])}, r"b1 +non-finite .*1 non-finite entry, first at \(0, 0\)"),
    (lambda **kw: {k: v for k, v in _good(**kw).items() if k != "b2"}, r"missing \['b2'\], unexpected \[\]"),
    (lambda **kw: {**_good(**kw), "W3": np.zeros(1)}, r"unexpected \['W3'\]"),
    (lambda **kw: {**_good(**kw), "W2": np.zeros((5, 5))}, r"W2 +shape .*shape \(5, 5\), expected \(1, 3\)"),
    (lambda **kw: {**_good(**kw), "W2": "oops"}, r"W2 +not numeric .*the gradient is not a numeric array"),
    (lambda **kw: [1, 2], r"must return a dict"),
    (lambda **kw: 1 / 0, r"raised ZeroDivisionError"),
])
def test_bad_user_output_gets_a_clear_assertion(broken, message):
    net = derive.mlp([2, 3, 1], activation="sigmoid", loss="half_sse")
    with pytest.raises(AssertionError, match=message):
        verify.assert_gradients_match(broken, net)


NETWORK_EXAMPLES = [name for name, ex in EXAMPLES.items() if not isinstance(ex.build(), (list, tuple))]
HESSIAN_EXAMPLES = [name for name, ex in EXAMPLES.items() if isinstance(ex.build(), tuple)]


@pytest.mark.parametrize("name", NETWORK_EXAMPLES)
def test_check_passes_on_every_seed_example(name):
    report = verify.check(EXAMPLES[name].derive(), trials=2)
    assert report.passed, str(report)
    # an MLP against the closed-form recursion, a network of blocks against verify's block reference
    assert {row.check for row in report.rows} >= {"finite differences"}
    assert {row.check for row in report.rows} & {"recursion", "reference"}


@pytest.mark.parametrize("name", HESSIAN_EXAMPLES)
def test_check_passes_on_every_hessian_example(name):
    report = verify.check(EXAMPLES[name].derive(), trials=2)
    assert report.passed, str(report)
    assert {row.check for row in report.rows} >= {"central differences", "symmetry", "exact (SymPy diff²)"}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_specs(*tables(), max_depth=3, max_width=3))
def test_check_passes_on_random_networks(spec):
    report = verify.check(derive.backprop(derive.mlp(**spec)), trials=1, samples=2)
    assert report.passed, str(report)


def test_check_reports_a_wrong_gradient_in_every_check_and_serialises():
    result = derive.backprop(derive.mlp([2, 2, 2], activation="tanh", loss="half_sse", samples=2))
    W1 = result.parameter("W1")
    # tampered: ∂L/∂W1 off by a factor 2
    wrong = type(result)(result.network, result.forward, result.deltas,
                         {**result.gradients, "W1": derive.core.expr.matmul(2, result.gradients["W1"])},
                         result.steps, result.adjoints)
    report = verify.check(wrong, trials=1)
    assert not report.passed
    assert {(r.parameter, r.check) for r in report.failures()} == {
        ("W1", "recursion"), ("W1", "finite differences"), ("W1", "exact (SymPy diff)")}
    assert "FAILED: 3 check(s)" in str(report) and W1.name in str(report)
    assert json.loads(report.to_json())["passed"] is False


def test_report_states_the_kink_avoidance_and_dtype_is_preserved():
    report = verify.check(derive.backprop(derive.mlp([3, 4, 2], activation="relu", output="identity")),
                          dtype=np.float32, trials=1)
    assert report.passed, str(report)
    assert any("relu-type" in note for note in report.notes) and report.dtype == "float32"


def test_andrew_ng_delta_formulas_equal_the_derived_ones_exactly():
    """Seed 000 §8: δ⁽⁴⁾ = a⁽⁴⁾ − y, δ⁽ˡ⁾ = Θ⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾ .* g'(z⁽ˡ⁾) with g' = g(1 − g), ∂J/∂Θ_ij = a_j δ_i,
    written out at sizes 2 and compared with the derived Hadamard and diag forms, entry by entry."""
    result = EXAMPLES["seed000-andrew-ng"].derive()
    net = result.network
    dims = {s: 2 for n in net.sizes for s in sp.sympify(n).free_symbols}
    env = {P.name: exact.symbol_matrix(P.name, *[int(sp.sympify(k).subs(dims)) for k in P.shape])
           for P in (net.X, net.Y, *net.parameters)}
    values = dict(env)
    for Z, E in [*result.forward.items(), *result.deltas.items()]:
        values[Z.name] = exact.explicit(E, values, dims)
    g = lambda z: 1 / (1 + sp.exp(-z))  # noqa: E731
    a = [values["X"]] + [values[f"A{l}"] for l in (1, 2, 3)]
    z = [None] + [env[f"W{l}"] * a[l - 1] + env[f"b{l}"] for l in (1, 2, 3)]
    ng = {3: (a[3] - values["Y"]).applyfunc(sp.expand)}
    for l in (2, 1):
        ng[l] = (env[f"W{l + 1}"].T * values[f"delta{l + 1}"]).multiply_elementwise(
            z[l].applyfunc(lambda u: g(u) * (1 - g(u))))
    diag = result.form("diag")
    for l in (3, 2, 1):
        hadamard = values[f"delta{l}"]
        diag_value = exact.explicit(diag[f"delta{l}"], values, dims)
        for i in range(2):
            assert exact.is_zero(hadamard[i, 0] - ng[l][i, 0]), (l, i)
            assert exact.is_zero(diag_value[i, 0] - ng[l][i, 0]), (l, i)
        grad = exact.explicit(result.gradients[f"W{l}"], values, dims)
        for i in range(2):
            for j in range(2):
                assert exact.is_zero(grad[i, j] - a[l - 1][j, 0] * values[f"delta{l}"][i, 0])


def test_pytest_plugin_gives_users_a_three_line_test(pytester):
    pytester.makepyfile(test_user="""
        import derive
        def test_my_backprop(gradcheck):
            net = derive.mlp([2, 3, 1], activation="sigmoid", loss="bce")
            gradcheck(derive.backprop(net).numpy(), net)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def _busy(seconds):
    import time
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        pass
    return "finished"


def test_a_time_limit_holds_when_the_first_alarm_is_swallowed():
    import time

    from verify.report import _within

    def stubborn():   # a bare except on the way, as some SymPy code has
        try:
            _busy(5)
        except BaseException:
            pass
        return _busy(5)
    start = time.monotonic()
    assert _within(1, stubborn) is None and time.monotonic() - start < 4
    assert _within(5, _busy, .1) == "finished"


def test_an_enclosing_time_limit_holds_inside_a_longer_one():
    import time

    from verify.report import _within
    start = time.monotonic()
    assert _within(1, lambda: _within(30, _busy, 10)) is None and time.monotonic() - start < 3
    # the inner limit first: the enclosing one goes on, with what it had left
    assert _within(30, lambda: (_within(1, _busy, 10), _busy(.1))[1]) == "finished"
    assert time.monotonic() - start < 6


@pytest.mark.parametrize("layout", ["WA", "AW"])
def test_inputs_away_from_relu_kinks_are_drawn_for_5000_samples(layout):
    from verify import data, recursion
    net = derive.mlp([784, 128, 10], activation="relu", loss="softmax_ce", layout=layout, samples=5000)
    spec = recursion.Spec.of(net)
    X, Y, params = data.draw(net, np.random.default_rng(0), data.dimensions(net))
    assert X.shape == ((5000, 784) if layout == "AW" else (784, 5000))
    Zs, _ = recursion.forward(spec, X, params)
    assert np.min(np.abs(Zs[0])) >= data.MARGIN and Zs[0].shape == (128, 5000)
