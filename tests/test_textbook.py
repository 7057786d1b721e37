"""The textbook view: every line of every chain equal to its left side on random values (differentials propagated
forward independently of derive), the seed 004 length targets, a golden chain, and rule labels that fit."""
import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower

import derive
from derive.cli.examples import EXAMPLES
from derive.core.expr import Differential, ScalarDifferential
from derive.networks.network import generic_layer
from derive.networks.textbook import chain_lines, textbook

NETWORKS = {
    "sigmoid-bce-WtA": lambda: derive.mlp([3, 2, 2], activation="sigmoid", loss="bce", layout="WtA", samples=2),
    "tanh-sse-WA-3": lambda: derive.mlp([2, 3, 2, 2], activation="tanh", output="sigmoid", loss="half_sse",
                                        samples=2),
    "relu-softmax-AW": lambda: derive.mlp([3, 2, 3], activation="relu", output="softmax", loss="softmax_ce",
                                          layout="AW", samples=2),
    "linear-decay-WA-3": lambda: derive.mlp([2, 2, 2, 2], activation="identity", loss="half_sse", samples=2,
                                            weight_decay=sp.Rational(1, 3)),
    "softplus-mse-nobias": lambda: derive.mlp([2, 2, 2], activation="softplus", output="sigmoid", loss="mse",
                                              bias=False, samples=2),
}


def _random(shape, rng, positive=False):
    values = rng.uniform(0.2, 0.8, shape) if positive else rng.normal(size=shape)
    return sp.ImmutableMatrix(values.tolist())


def _evaluate(E, values, sizes=None):
    """E on explicit matrices (SymPy's own doit, float entries); `sizes` binds a generic layer's sizes."""
    E = E.xreplace(values)
    if sizes:
        E = E.xreplace(sizes)
    ones = {O: sp.ImmutableMatrix(sp.ones(*O.shape)) for O in E.atoms(sp.OneMatrix)}
    out = E.xreplace(ones)
    # SymPy's doit leaves B^∘p of an explicit B: evaluated entrywise here, innermost first
    while True:
        powers = [n for n in sp.postorder_traversal(out) if isinstance(n, HadamardPower)]
        if not powers:
            break
        P = powers[0]
        base = sp.ImmutableMatrix(P.base.doit())
        out = out.xreplace({P: base.applyfunc(lambda v, p=P.exp: v ** p)})
    out = out.doit() if hasattr(out, "doit") else out
    if isinstance(out, sp.MatrixBase):
        out = out.applyfunc(lambda e: e.doit())
        return np.array(out.evalf(), dtype=float)
    return float(sp.N(out))


def _values(net, rng):
    """Random inputs, parameters, δ's and parameter differentials; forward values and dZ, dA propagated with
    SymPy's own calculus (jacobian-free: the directional derivative of each definition)."""
    eps = sp.Symbol("eps")
    values = {net.X: _random(net.X.shape, rng), net.Y: _random(net.Y.shape, rng, positive=True)}
    moving = {net.X: values[net.X]}
    for P in net.parameters:
        values[P] = _random(P.shape, rng)
        values[Differential(P)] = _random(P.shape, rng)
        moving[P] = values[P] + eps * values[Differential(P)]
    for layer in net.layers:
        values[layer.delta] = _random(layer.delta.shape, rng)
        for name in (layer.Z, layer.A):
            E = net.forward[name]
            path = E.xreplace(moving).doit()
            path = sp.ImmutableMatrix(path.applyfunc(lambda e: e.doit()))
            moving[name] = path
            values[name] = sp.ImmutableMatrix(path.subs(eps, 0).evalf())
            values[Differential(name)] = sp.ImmutableMatrix(sp.diff(path, eps).subs(eps, 0).evalf())
    values["moving"], values["eps"] = moving, eps
    return values


def _differentials_of_functions(lines, values):
    """d F(A) for the function nodes the output chain differentiates first (d log A): the derivative of F along
    the same path, by SymPy."""
    moving, eps, out = values["moving"], values["eps"], {}
    for line in lines:
        for t in line.terms:
            for D in sp.preorder_traversal(t):
                if isinstance(D, Differential) and D not in values:
                    F = D.arg.xreplace(moving)
                    F = F.xreplace({O: sp.ImmutableMatrix(sp.ones(*O.shape)) for O in F.atoms(sp.OneMatrix)})
                    path = sp.ImmutableMatrix(F.doit()).applyfunc(lambda e: e.doit())
                    out[D] = sp.ImmutableMatrix(sp.diff(path, eps).subs(eps, 0).evalf())
    return out


def _generic(net, values):
    """The generic layer's symbols bound to layer 1 → 2 of net: W(l+1) = W2, A(l) = A1, …"""
    g = generic_layer(net)
    one, two = net.layers[0], net.layers[1]
    pairs = {g["W"]: two.W, g["A"]: one.A, g["Z"]: one.Z, g["delta"]: one.delta, g["Z_next"]: two.Z,
             g["delta_next"]: two.delta}
    if g["b"] is not None:
        pairs[g["b"]] = two.b
    bound = {}
    for generic, concrete in pairs.items():
        bound[generic] = values[concrete]
        if Differential(concrete) in values:
            bound[Differential(generic)] = values[Differential(concrete)]
    sizes = {g: c for generic, concrete in pairs.items() for g, c in zip(generic.shape, concrete.shape)
             if g.is_Symbol}
    return bound, sizes


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_line_of_every_chain_equals_its_left_side(name):
    net = NETWORKS[name]()
    result = derive.backprop(net)
    rng = np.random.default_rng(7)
    values = _values(net, rng)
    generic, sizes = _generic(net, values) if net.L >= 3 else ({}, {})
    values = {k: v for k, v in {**values, **generic}.items() if not isinstance(k, str)}
    slopes, chains = textbook(result)
    assert chains
    for chain in chains:
        if isinstance(chain.lhs, ScalarDifferential):
            continue  # dL itself: checked below against central differences
        lhs = _evaluate(chain.lhs, values, sizes)
        for line in chain.lines:
            assert np.isclose(sum(_evaluate(t, values, sizes) for t in line.terms), lhs, rtol=1e-9, atol=1e-12), \
                (name, chain.title, line)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_output_chain_equals_the_directional_derivative_of_the_loss(name):
    net = NETWORKS[name]()
    rng = np.random.default_rng(3)
    values = _values(net, rng)
    chain = textbook(derive.backprop(net))[1][0]
    # dL along the parameter differentials, by central differences of the data loss (SymPy evaluates it)
    h = 1e-6
    data = net.data_loss()

    def loss_at(t):
        moved = {P: values[P] + t * values[Differential(P)] for P in net.parameters}
        moved[net.X], moved[net.Y] = values[net.X], values[net.Y]
        for layer in net.layers:
            for n in (layer.Z, layer.A):
                E = net.forward[n].xreplace(moved).doit()
                moved[n] = sp.ImmutableMatrix(E.applyfunc(lambda e: e.doit()).evalf())
        return _evaluate(data, moved)

    dL = (loss_at(h) - loss_at(-h)) / (2 * h)
    values.update(_differentials_of_functions(chain.lines, values))
    for line in chain.lines:
        assert np.isclose(sum(_evaluate(t, values) for t in line.terms), dL, rtol=1e-5), (name, line)


def test_chain_results_agree_with_the_engine():
    # the δ and gradients read off the chains are the engine's, up to form (checked on random values)
    net = NETWORKS["sigmoid-bce-WtA"]()
    result = derive.backprop(net)
    values = {k: v for k, v in _values(net, np.random.default_rng(1)).items() if not isinstance(k, str)}
    for chain in textbook(result)[1]:
        for symbol, E, kind in chain.results:
            engine = result.deltas[symbol] if kind == "delta" else result.gradients[symbol.name]
            assert np.allclose(_evaluate(E, values), _evaluate(engine, values))


def test_seed004_textbook_length_targets():
    # the targets: dL to δ⁽²⁾ in at most 6 displayed lines, each later layer in at most 4
    slopes, chains = textbook(EXAMPLES["seed004-two-layer"].derive())
    assert len(chains[0].lines) <= 6
    assert all(len(c.lines) <= 4 for c in chains[1:])


GOLDEN_SEED004 = """\
The output layer: from L to δ2:
  dL = -tr(Yᵀ d log(A2) + (1 - Y)ᵀ d log(1 - A2))
         [constant factor, trace rule, sum rule, product rule, data]
     = -tr(Yᵀ (dA2 ⊘ A2) + (1 - Y)ᵀ ((-dA2) ⊘ (1 - A2)))
         [elementwise rule, sum rule, constant factor]
     = -tr((Y ⊘ A2)ᵀ dA2) + tr(((1 - Y) ⊘ (1 - A2))ᵀ dA2)   [trace of Hadamard, Hadamard algebra]
     = tr(((A2 - Y) ⊘ (A2 ⊙ (1 - A2)))ᵀ dA2)   [collect terms, common denominator]
     = tr(((A2 - Y) ⊘ (A2 ⊙ (1 - A2)))ᵀ ((1 - A2) ⊙ A2 ⊙ dZ2))
         [definition, elementwise rule, derivative of sigmoid]
     = tr((A2 - Y)ᵀ dZ2)   [trace of Hadamard, Hadamard algebra]
     ⇒ δ2 = A2 - Y"""


def test_golden_seed004_output_chain():
    chain = textbook(EXAMPLES["seed004-two-layer"].derive())[1][0]
    assert "\n".join(chain_lines(chain)) == GOLDEN_SEED004


@pytest.mark.parametrize("name", [n for n, e in EXAMPLES.items()
                                  if not isinstance(e.build(), (list, tuple))])   # networks
def test_text_fits_100_columns_and_names_sigma_once(name):
    result = EXAMPLES[name].derive()
    text = result.text()
    assert max(map(len, text.splitlines())) <= 100
    # once A is named, σ(Z) never reappears in the chains
    chains = text.split("\n\n", 1)[1]
    assert "σ(Z" not in chains


def test_generic_layer_for_deep_networks_and_concrete_chains_for_two_layers():
    deep = textbook(EXAMPLES["seed000-L-layer-sigmoid"].derive())[1]
    assert len(deep) == 3   # the output layer, a generic layer l, the first layer
    assert "δ(l)" in "\n".join(chain_lines(deep[1]))
    two = textbook(EXAMPLES["seed004-two-layer"].derive())[1]
    assert [len(c.results) for c in two] == [1, 3, 2]


def test_detail_is_checked_and_full_shows_every_step(tmp_path):
    result = EXAMPLES["seed004-two-layer"].derive()
    with pytest.raises(derive.InvalidArgument, match="detail"):
        result.text("short")
    assert "[name the adjoint]" in result.text("full") and "[name the adjoint]" not in result.text()
    derivation = EXAMPLES["seed004-linear-map"].derive()[0]
    with pytest.raises(derive.InvalidArgument, match="detail"):
        derivation.text("short")   # a Derivation's text checks it too (it printed the textbook view)
    with pytest.raises(derive.InvalidArgument, match="paper"):
        derive.write(result, tmp_path, paper="a5", pdf=False)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softplus", "leaky_relu"])
def test_each_written_out_slope_is_the_derivative_of_the_definition(name):
    from derive.core.registry import activation
    from derive.networks.textbook import slope
    s = slope(activation(name))
    z = sp.Symbol("z", real=True)
    truth = sp.diff(activation(name).definition()(z).rewrite(sp.exp), z)
    assert s.steps
    for form in s.steps:
        for value in (-1.3, 0.4, 2.0):
            assert np.isclose(float(form.subs(z, value).rewrite(sp.exp).evalf()),
                              float(truth.subs(z, value).evalf())), (name, form)


N = sp.Symbol("n", integer=True, positive=True)


@pytest.mark.parametrize("f, expected", [
    # Cookbook eq. 81 for the affine argument x = X b + c: (D + Dᵀ)(X b + c) bᵀ, the two uses of X collected
    (lambda X, A, B, C, D, b, c: (X * b + c).T * D * (X * b + c), "(Dᵀ + D) (X b + c) bᵀ"),
    # Cookbook eq. 119: the two halves of 2 Aᵀ(A X B + C)Bᵀ collected
    (lambda X, A, B, C, D, b, c: sp.Trace((A * X * B + C) * (A * X * B + C).T), "2 Aᵀ (A X B + C) Bᵀ"),
    # Cookbook eq. 108: (B + Bᵀ) X
    (lambda X, A, B, C, D, b, c: sp.Trace(X.T * B * X), "(Bᵀ + B) X"),
], ids=["cookbook-eq81-affine", "cookbook-eq119", "cookbook-eq108"])
def test_results_are_collected_as_a_textbook_writes_them(f, expected):
    from derive.printing.text import text
    X, A, B, C, D = (sp.MatrixSymbol(k, N, N) for k in "XABCD")
    b, c = (sp.MatrixSymbol(k, N, 1) for k in "bc")
    function = f(X, A, B, C, D, b, c)
    G = derive.derivation(function, X).gradient
    assert text(G) == expected
    # and the collected form is the gradient: central differences at n = 3
    rng = np.random.default_rng(0)
    values = {M: sp.ImmutableMatrix(rng.normal(size=(3, M.cols if M.cols == 1 else 3)).tolist())
              for M in (X, A, B, C, D, b, c)}
    sized = {N: 3}
    V = sp.ImmutableMatrix(rng.normal(size=(3, 3)).tolist())
    h = 1e-6

    def at(t):
        out = function.xreplace(sized).xreplace({**{k.xreplace(sized): v for k, v in values.items()},
                                                 X.xreplace(sized): values[X] + t * V})
        out = out.doit()
        return float(sp.N(out[0, 0] if getattr(out, "is_Matrix", False) else out))

    numeric = (at(h) - at(-h)) / (2 * h)
    G_value = np.array(sp.N(G.xreplace(sized).xreplace({k.xreplace(sized): v for k, v in values.items()}).doit()),
                       dtype=float)
    assert np.isclose(np.sum(G_value * np.array(V, dtype=float)), numeric, rtol=1e-5)
