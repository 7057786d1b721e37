"""The body of a network-of-blocks document: every δ and every gradient the engine derives is stated once, whole, in
a chain (the parts a matrix read twice gets are stated as contributions), and each stated whole result is the
engine's, checked numerically at random values."""
import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.examples import EXAMPLES
from derive.codegen.program import lambdify
from derive.networks.textbook import textbook
from derive.networks.views_convolution import unfold

NETWORKS = {
    **{name: EXAMPLES[name].build for name in EXAMPLES if name.startswith("block-")},
    "residual around dense and layer norm": lambda: derive.Network(
        3, [derive.Residual([derive.Dense(3, "relu"), derive.LayerNorm()]), derive.Dense(2, "identity")],
        samples=4),
    "layer norms with weight decay": lambda: derive.Network(
        4, [derive.Dense(3, "tanh"), derive.LayerNorm(), derive.Dense(3, "tanh"), derive.LayerNorm(),
            derive.Dense(2, "identity")], layout="WtA", samples=5, weight_decay=0.5),
    "causal attention, two heads": lambda: derive.Network(
        4, [derive.SelfAttention(2, heads=2, causal=True), derive.Dense(3, "softmax")], loss="softmax_ce",
        samples=5),
    "convolution without activation": lambda: derive.Network(2, [derive.Conv1D(3, 2, padding=1), derive.Conv1D(2, 2)],
                                                             samples=6),
    "recurrent with weight decay": lambda: derive.Network(3, [derive.Recurrent(4, 3), derive.Dense(2, "identity")],
                                                          layout="AW", samples=3, weight_decay=0.5),
    "tied autoencoder": lambda: derive.Network(4, [derive.Dense(2, "sigmoid"), derive.Dense(4, "identity", tie="W1")],
                                               samples=3),
}


def stated(result):
    """{symbol: [expressions]} of the whole results (δ and ∂L/∂P) the chains of the body read off, a generic chain's
    (step t, tap j) at each step it stands for, a sum over the taps written out."""
    found = {}
    for chain in textbook(result)[1]:
        for symbol, E, kind in chain.results:
            if kind not in ("delta", "gradient"):
                continue
            generic = [m for m in chain.instances if symbol in m]
            for m in generic or [{}]:
                found.setdefault(symbol.xreplace(m), []).append(unfold(E).xreplace(m))
    return found


def equal_at_random(E, F, seed=0):
    """Whether E and F agree at random values of every matrix and scalar they read (sizes drawn too)."""
    rng = np.random.default_rng(seed)
    matrices = sorted((E.atoms(sp.MatrixSymbol) | F.atoms(sp.MatrixSymbol)), key=str)
    sizes = {s: int(rng.integers(2, 6)) for M in matrices for s in M.shape if isinstance(s, sp.Symbol)}
    scalars = sorted((E.free_symbols | F.free_symbols) - set(matrices) - set(sizes), key=str)
    scalars = [s for s in scalars if not s.is_Matrix]
    values = [rng.uniform(0.1, 0.9, tuple(int(sp.sympify(k).xreplace(sizes)) for k in M.shape)) for M in matrices]
    values += [rng.uniform(0.1, 0.9) for _ in scalars]
    args = [*matrices, *scalars]
    got, want = lambdify(args, E)(*values), lambdify(args, F)(*values)
    return np.allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_result_is_stated_once_whole_in_the_body(name):
    result = derive.backprop(NETWORKS[name]())
    found = stated(result)
    derived = {**result.deltas, **{result.parameter(k): G for k, G in result.gradients.items()}}
    assert {str(s): len(Es) for s, Es in found.items() if len(Es) != 1} == {}
    assert sorted(map(str, found)) == sorted(map(str, derived))
    partial = [str(s) for s, (E,) in found.items() if not equal_at_random(E, derived[s])]
    assert partial == []


def test_a_recurrent_layer_is_derived_once_for_a_generic_step():
    result = derive.backprop(NETWORKS["block-recurrent"]())
    layer = [c for c in textbook(result)[1] if "recurrent" in c.title[0]]
    assert len(layer) == 1 and layer[0].where == "for t = 3, 2, 1"
    assert [str(s) for s, *_ in layer[0].sums] == ["Wx1", "Wh1", "b1"]
    assert "H1_0" in str(layer[0].note) and len(layer[0].instances) == 3


def test_the_algorithm_returns_each_gradient_by_its_name():
    # Andrew Ng's network, one sample: ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾, computed once as δ⁽ˡ⁾ and returned as ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾
    from derive.documents.blocks import algorithm
    returns = algorithm(EXAMPLES["seed000-andrew-ng"].derive().program()).returns
    assert len(returns) == 6 and all(r.startswith(r"\partial L / \partial") for r in returns)
    assert r"\partial L / \partial b^{(1)} = \delta^{(1)}" in returns


def test_the_derivative_of_every_activation_used_is_written_out():
    slopes = textbook(derive.backprop(NETWORKS["block-recurrent"]()))[0]
    z = sp.Symbol("z", real=True)
    assert [s.name for s in slopes] == ["tanh", "sigmoid"]
    # each form of σ′ written out equals σ's central difference at a few points
    for s in slopes:
        f = lambda x: float(s.function.rewrite(sp.exp).subs(z, x))
        for form in s.steps:
            for x in (-1.3, 0.2, 2.1):
                assert abs(float(form.rewrite(sp.exp).subs(z, x)) - (f(x + 1e-6) - f(x - 1e-6)) / 2e-6) < 1e-6
