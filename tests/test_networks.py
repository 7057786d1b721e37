"""Networks: every seed example and random architectures against the hand-written recursion and
finite differences; the closed forms the textbooks state; the equivalent forms; bad input."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
from derive.cli.examples import EXAMPLES
from derive.core.expr import matadd, matmul
from derive.networks.forms import I
from verify import Spec, central_difference, data, recursion
from verify.strategies import mlp_specs

from .networks import errors, tables

NETWORK_EXAMPLES = [name for name, ex in EXAMPLES.items() if not isinstance(ex.build(), (list, tuple))]


def same(a, b):
    """Structural equality up to the order of terms and factors (SymPy's canonical form)."""
    return a.doit() == b.doit()


@pytest.mark.parametrize("name", [n for n in NETWORK_EXAMPLES if EXAMPLES[n].build().dense_chain()])
def test_seed_example_matches_recursion_and_finite_differences(name):
    result = EXAMPLES[name].derive()
    for param, (vs_recursion, vs_fd) in errors(result, np.random.default_rng(0)).items():
        assert vs_recursion < 1e-6, (param, vs_recursion)
        assert vs_fd < 1e-6, (param, vs_fd)


def test_seed004_linear_map_gives_dD_Xt_and_Wt_dD():
    dW, dX = (d.gradient for d in EXAMPLES["seed004-linear-map"].derive())
    W, X, G = (sp.MatrixSymbol(k, *s) for k, s in (("W", dW.shape), ("X", dX.shape), ("G", (dW.rows, dX.cols))))
    assert same(dW, G * X.T) and same(dX, W.T * G)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlp_specs(*tables(), max_depth=5, max_width=6), st.integers(0, 2 ** 32 - 1))
# found by hypothesis: Z = −31 at a softplus output; σ(Z)/softplus(Z) lost 3 digits with σ = (1 + tanh(Z/2))/2
@example({"sizes": [6, 5, 5, 2, 2, 1], "activation": ["identity"] * 4, "output": "softplus", "loss": "softmax_ce",
          "layout": "WA", "bias": True, "reduction": "mean", "weight_decay": 0, "samples": 3}, 11427088)
def test_random_architecture_matches_recursion_and_finite_differences(spec, seed):
    result = derive.backprop(derive.mlp(**spec))
    for param, (vs_recursion, vs_fd) in errors(result, np.random.default_rng(seed)).items():
        assert vs_recursion < 1e-6, (param, vs_recursion)
        assert vs_fd < 1e-6, (param, vs_fd)


def _output(result):
    net = result.network
    return net.output.delta, net.output.A, net.Y, net.m


@pytest.mark.parametrize("layout", derive.LAYOUTS)
@pytest.mark.parametrize("reduction", derive.REDUCTIONS)
def test_output_delta_of_sigmoid_bce_is_structurally_A_minus_Y(layout, reduction):
    result = derive.backprop(derive.mlp([4, 3, 5], activation="tanh", output="sigmoid", loss="bce", layout=layout,
                                        reduction=reduction))
    delta, A, Y, m = _output(result)
    scale = 1 / m if reduction == "mean" else 1
    assert result.deltas[delta] == matmul(scale, matadd(A, matmul(-1, Y)))


@pytest.mark.parametrize("layout", derive.LAYOUTS)
def test_softmax_cross_entropy_delta_holds_for_any_targets(layout):
    """δ = a (1ᵀy) − y per sample: A − Y only when every sample's targets sum to 1; with targets that do not (here
    summing to 0.3 … 2.7), the generated gradients still match the recursion's general form and central differences."""
    net = derive.mlp([4, 3, 5], activation="tanh", output="softmax", loss="softmax_ce", layout=layout)
    result = derive.backprop(net)
    delta, A, Y, m = _output(result)
    J = sp.OneMatrix(5, 5)
    total = matmul(J, Y) if layout != "AW" else matmul(Y, J)  # 1 1ᵀ Y: each sample's target sum, repeated
    assert same(result.deltas[delta], matmul(1 / m, matadd(sp.HadamardProduct(A, total), matmul(-1, Y))))
    rng = np.random.default_rng(0)
    X, _, params = data.draw(net, rng, data.dimensions(net, 3, 4))
    Y = rng.uniform(0.1, 0.9, size=X.shape[:-1] + (5,) if layout == "AW" else (5, X.shape[1]))
    spec = Spec.of(net)
    got = result.numpy()(X=X, Y=Y, **params)
    for name, G in recursion.gradients(spec, X, Y, params).items():
        fd = central_difference(lambda **p: recursion.loss(spec, X, Y, p), params, name)
        assert np.allclose(got[name], G, rtol=1e-10, atol=1e-12) and np.allclose(got[name], fd, atol=1e-6), name


@pytest.mark.parametrize("layout, dW, db, back", [
    # ∂L/∂W^(l), ∂L/∂b^(l) and the δ recursion's linear part for each layout, as the textbooks write them
    ("WA", lambda d, A: d * A.T, lambda d, one: d * one, lambda W, d: W.T * d),
    ("WtA", lambda d, A: A * d.T, lambda d, one: d * one, lambda W, d: W * d),
    ("AW", lambda d, A: A.T * d, lambda d, one: d.T * one, lambda W, d: d * W.T),
])
def test_textbook_recursion_falls_out_in_every_layout(layout, dW, db, back):
    net = derive.mlp([2, 3, 4, 2], activation="sigmoid", loss="half_sse", layout=layout, reduction="sum",
                     weight_decay=sp.Symbol("lambda"))
    result = derive.backprop(net)
    one = sp.OneMatrix(net.m, 1)
    for l, layer in enumerate(net.layers, 1):
        A_prev = net.X if l == 1 else net.layers[l - 2].A
        assert same(result.gradients[f"W{l}"], dW(layer.delta, A_prev) + sp.Symbol("lambda") * layer.W)
        assert same(result.gradients[f"b{l}"], db(layer.delta, one))
    # δ^(L) = (A − Y) ⊙ σ'(Z^(L)), δ^(l) = (W^(l+1)ᵀ δ^(l+1)) ⊙ σ'(Z^(l)) with σ' = σ(1 − σ) = A ⊙ (1 − A)
    J = sp.OneMatrix(*net.output.A.shape)
    A = net.output.A
    assert same(result.deltas[net.output.delta], sp.HadamardProduct(A - net.Y, J - A, A))
    for l in (1, 2):
        layer, above = net.layers[l - 1], net.layers[l]
        J = sp.OneMatrix(*layer.A.shape)
        expected = sp.HadamardProduct(back(above.W, above.delta), J - layer.A, layer.A)
        assert same(result.deltas[layer.delta], expected)


def test_half_sse_output_delta_keeps_sigma_prime_of_Z():
    net = derive.mlp([3, 2], activation="tanh", loss="half_sse", reduction="sum")
    result = derive.backprop(net)
    A, Y = net.output.A, net.Y
    # tanh' = 1 − tanh², written with A = tanh(Z)
    assert same(result.deltas[net.output.delta], sp.HadamardProduct(A - Y, sp.OneMatrix(*A.shape)
                                                                     - sp.HadamardPower(A, 2)))


def _explicit(M):
    return sp.Matrix(M.as_explicit()).applyfunc(sp.expand)


@pytest.mark.parametrize("activation, loss", [("sigmoid", "half_sse"), ("tanh", "mse"), ("sigmoid", "bce")])
def test_diag_hadamard_and_index_forms_are_identical_after_expansion(activation, loss):
    """Exact SymPy equality for concrete sizes: seed 000's diag form, the Hadamard form, seed 001's index form."""
    result = derive.backprop(derive.mlp([2, 3, 2, 2], activation=activation, loss=loss, samples=1))
    hadamard, diag, index = (result.form(f) for f in ("hadamard", "diag", "index"))
    assert any(e.has(sp.DiagMatrix) for e in diag.values())
    for key, H in hadamard.items():
        explicit = _explicit(H)
        assert explicit == _explicit(diag[key]), key
        for i in range(explicit.rows):
            for j in range(explicit.cols):
                entry = index[key].subs(I, i).subs(derive.networks.forms.J, j).doit()
                assert sp.expand(entry - explicit[i, j]) == 0, (key, i, j)


def test_index_form_reads_as_seed_001():
    result = derive.backprop(derive.mlp(sp.symbols("n0:3", integer=True, positive=True), samples=1, bias=False))
    delta1 = result.form("index")["delta1"]
    # δ_i^(1) = (Σ_j W_ji^(2) δ_j^(2)) σ'(z_i^(1))
    assert delta1.has(sp.Sum)
    W2 = result.parameter("W2")
    assert any(isinstance(a, MatrixElement) and a.parent == W2 and a.j == I for a in delta1.atoms(MatrixElement))


def test_diag_form_needs_a_single_sample():
    with pytest.raises(ValueError, match="single sample"):
        derive.backprop(derive.mlp([2, 2])).form("diag")


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="sigmod"), r"layer 1: unknown activation 'sigmod'; valid: identity, sigmoid"),
    (dict(activation="softmax", output="sigmoid"), r"layer 1: softmax is only valid on the output layer"),
    (dict(output="relu", loss="bce"), r"layer 2: loss 'bce' needs an output activation in sigmoid \(binary"),
    (dict(output="tanh", loss="softmax_ce"), r"layer 2: loss 'softmax_ce'"),
    (dict(loss="hinge"), r"unknown loss 'hinge'; valid: half_sse, mse, bce, softmax_ce"),
    (dict(layout="XW"), r"unknown layout 'XW'; valid: WA, WtA, AW"),
    (dict(reduction="max"), r"unknown reduction 'max'; valid: mean, sum"),
    (dict(output="softmax", sizes=[2, 1]), r"layer 1: softmax over a single unit"),
    (dict(samples=0), r"samples: size must be a positive integer"),
    (dict(weight_decay=-1.0), r"weight_decay must be non-negative"),
])
def test_bad_architecture_is_rejected_naming_the_layer(kwargs, message):
    with pytest.raises(ValueError, match=message):
        derive.mlp(**{"sizes": [2, 3, 2], **kwargs})


@pytest.mark.parametrize("sizes, message", [
    ([2, 0, 2], "layer 1: size must be a positive integer"),
    ([2, 3, -1], "layer 2: size must be a positive integer"),
    ([2.5, 3], "input layer 0: size must be a positive integer"),
    ([2, True], "layer 1: size must be a positive integer"),
    ([3], "needs the input size and at least one layer"),
])
def test_bad_sizes_are_rejected_naming_the_layer(sizes, message):
    with pytest.raises(ValueError, match=message):
        derive.mlp(sizes)


def test_mixed_layers_with_symbolic_sizes():
    n, h = sp.symbols("n h", integer=True, positive=True)
    net = derive.Network(n, [derive.Dense(h, "relu"), derive.Dense(h, "tanh", bias=False),
                             derive.Dense(1, "sigmoid")], loss="bce")
    result = derive.backprop(net)
    assert list(result.gradients) == ["W1", "b1", "W2", "W3", "b3"]
    assert result.gradients["W2"].shape == (h, h)
    for param, (vs_recursion, vs_fd) in errors(result, np.random.default_rng(3), width=4).items():
        assert vs_recursion < 1e-6 and vs_fd < 1e-6, param


def test_custom_activation_function():
    x = sp.Symbol("x")
    net = derive.mlp([2, 3, 1], activation=sp.Lambda(x, x ** 3 + x), output="identity", reduction="sum")
    result = derive.backprop(net)
    layer = net.layers[0]
    # σ(x) = x³ + x, σ' = 3x² + 1
    J = sp.OneMatrix(*layer.Z.shape)
    assert same(result.deltas[layer.delta], sp.HadamardProduct(net.layers[1].W.T * net.layers[1].delta,
                                                              3 * sp.HadamardPower(layer.Z, 2) + J))


def test_numpy_function_checks_its_keywords():
    f = derive.backprop(derive.mlp([2, 2, 2])).numpy()
    with pytest.raises(TypeError, match=r"missing \['b2'\], unexpected \['c'\]"):
        f(X=np.ones((2, 1)), Y=np.ones((2, 1)), W1=np.eye(2), b1=np.ones((2, 1)), W2=np.eye(2), c=1)
