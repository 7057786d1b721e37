"""The transformer document: one chain per generic head h (not per head), alike layer norms derived once, 1/√d_k with
d_k a symbol, and the compact forms it ends its blocks with equal (at random values) to the results the chains derive
and to the textbook formulas computed by hand in NumPy."""
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.examples import EXAMPLES
from derive.codegen.program import lambdify
from derive.core.functions import Softmax
from derive.networks.blocks import flatten
from derive.networks.textbook import textbook
from derive.networks.views_attention import norm_compact, softmax_compact
from tests.test_block_documents import equal_at_random

ATTENTION = {
    "two heads, rows": lambda: derive.Network(4, [derive.SelfAttention(2, heads=2), derive.Dense(3, "identity")],
                                              layout="AW", samples=5),
    "three causal heads, columns": lambda: derive.Network(
        4, [derive.SelfAttention(2, heads=3, causal=True), derive.Dense(3, "softmax")], loss="softmax_ce",
        layout="WA", samples=5),
}
NORMS = {
    "transformer": EXAMPLES["block-transformer"].build,
    "dense then layer norm, columns": lambda: derive.Network(
        4, [derive.Dense(3, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")], layout="WtA", samples=5),
    "two full layer norms, rows": lambda: derive.Network(
        3, [derive.Dense(4, "tanh"), derive.LayerNorm(), derive.Dense(4, "tanh"), derive.LayerNorm(),
            derive.Dense(2, "identity")], layout="AW", samples=3),
    "dense then batch norm, columns": lambda: derive.Network(
        4, [derive.Dense(3, "tanh"), derive.BatchNorm(), derive.Dense(2, "identity")], layout="WtA", samples=5),
    "two batch norms, rows": lambda: derive.Network(
        3, [derive.Dense(4, "tanh"), derive.BatchNorm(), derive.Dense(4, "tanh"), derive.BatchNorm(),
            derive.Dense(2, "identity")], layout="AW", samples=3),
}


def chains_of(result):
    return textbook(result)[1]


def test_the_transformer_derives_one_generic_head():
    result = derive.backprop(EXAMPLES["block-transformer"].build())
    heads = [c for c in chains_of(result) if "head h" in c.title[0]]
    # from δ_O (each head's term O_h), δ_P_h, δ_S_h, then δ_Q_h, δ_K_h, δ_V_h together: each for h = 1, 2
    assert len(heads) == 4 and all(c.where == "for h = 1, 2" and len(c.instances) == 2 for c in heads)
    printed = " ".join(str(p) for c in chains_of(result) for p in c.title)
    assert "Q2_1" not in printed and "P2_2" not in printed and "delta_P2_h" in printed
    # no chain for a concrete head's symbol is left
    concrete = {M for h in (1, 2) for M in result.network.forward if M.name.endswith(f"_{h}")}
    assert not [c for c in chains_of(result) if c.via in concrete]
    # the sums over heads: δ_Q = Σ_h δ_Q_h E_h
    assert [str(s) for s, *_ in heads[-1].sums] == ["delta_Q2", "delta_K2", "delta_V2"]


def test_alike_layer_norms_are_derived_once():
    result = derive.backprop(EXAMPLES["block-transformer"].build())
    # the copy derives its parameters' gradients (every gradient derived in the body) and states the rest
    first = [c for c in chains_of(result) if c.title[0].startswith("Layer 1: layer norm")]
    assert len(first) == 1 and first[0].lines and {kind for _, _, kind in first[0].results} == {"gradient"}
    result = derive.backprop(NORMS["two full layer norms, rows"]())
    derived = [c for c in chains_of(result) if c.title[0].startswith("Layer 4: layer norm") and c.lines]
    again = [c for c in chains_of(result) if c.title[0].startswith("Layer 2: layer norm")]
    kept = [c for c in again if c.lines]
    assert len(derived) == 6 and len(kept) == 1 and {kind for _, _, kind in kept[0].results} >= {"gradient"}
    stated = [c for c in again if not c.lines]
    assert stated and all("as in layer 4" in c.title[-1] for c in stated)
    assert not any(kind == "gradient" for c in stated for _, _, kind in c.results)


@pytest.mark.parametrize("name", ATTENTION)
def test_the_scale_is_one_over_the_square_root_of_d_k(name):
    result = derive.backprop(ATTENTION[name]())
    d_k = sp.Symbol("d_k1", positive=True)
    assert result.network.constants[d_k] == 2
    S = [E for Z, E in result.forward.items() if Z.name.startswith("S1")]
    assert S and all(E.has(1 / sp.sqrt(d_k)) and not E.has(sp.sqrt(2)) for E in S)
    from derive.printing.latex import latex
    assert latex(1 / sp.sqrt(d_k)) == r"\frac{1}{\sqrt{d_{k}^{(1)}}}"


def softmax_backward_by_hand(P, dP, axis):
    """δ_S per query by the softmax's Jacobian: δ_s = (diag(p) − p pᵀ) δ_p for each query's weights p."""
    P, dP = (np.moveaxis(M, axis, -1) for M in (P, dP))
    out = np.stack([(np.diag(p) - np.outer(p, p)) @ g for p, g in zip(P, dP)])
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("name", ATTENTION)
def test_the_softmax_compact_form_equals_the_derived_result_and_the_jacobian(name):
    result = derive.backprop(ATTENTION[name]())
    net, rng = result.network, np.random.default_rng(1)
    for P, S in [(Z, E.arg) for Z, E in net.forward.items() if isinstance(E, Softmax) and Z.name.startswith("P")]:
        axis = net.forward[P].axis
        dP, dS = net.deltas[P], net.deltas[S]
        compact = softmax_compact(P, dP, axis)
        assert equal_at_random(compact, result.deltas[dS])
        # at weights that are a softmax (each query's sum to 1), the Jacobian by hand
        weights = rng.uniform(0.1, 1.0, P.shape)
        weights /= weights.sum(axis=axis, keepdims=True)
        grad = rng.normal(size=P.shape)
        got = lambdify([P, dP], compact)(weights, grad)
        assert np.allclose(got, softmax_backward_by_hand(weights, grad, axis))


def layer_norm_backward_by_hand(x, g, eps, axis):
    """What a layer norm y = (x − mean x)/√(var x + ε) passes back per sample, by the textbook formula
    s (g − mean g − N mean(g N)), the features along `axis`."""
    mu = x.mean(axis=axis, keepdims=True)
    s = 1 / np.sqrt(((x - mu) ** 2).mean(axis=axis, keepdims=True) + eps)
    N = (x - mu) * s
    return s * (g - g.mean(axis=axis, keepdims=True) - N * (g * N).mean(axis=axis, keepdims=True))


@pytest.mark.parametrize("name", NORMS)
def test_the_layer_and_batch_norm_compact_forms_equal_the_derived_result(name):
    result = derive.backprop(NORMS[name]())
    net = result.network
    chains = chains_of(result)
    forms = [r for c in chains for r in c.results if r[2] == "form"]
    norms = [b for b in flatten(net.blocks) if b.kind in ("layer norm", "batch norm")]
    assert forms and len(forms) == 1
    (part, compact, _), = forms
    block = [b for b in norms if b.definitions[4][0] in compact.atoms(sp.MatrixSymbol)][0]
    (mu, _), (C, _), (v, _), (s, _), (N, _), _ = block.definitions
    # what the chains derive, written in the block's input and g = δ_N: each δ by its derived result, each
    # intermediate by its definition
    g = net.deltas[N]
    derived = part
    for _ in range(6):
        derived = derived.xreplace({d: E for d, E in result.deltas.items() if d != g})
    forward = net.forward
    for _ in range(6):
        derived = derived.xreplace({Z: forward[Z] for Z in (mu, C, v, s, N)})
        compact = compact.xreplace({Z: forward[Z] for Z in (mu, C, v, s, N)})
    eps = [c for c in net.constants if c.name == f"epsilon{block.index}"][0]
    derived, compact = derived.xreplace(net.constants), compact.xreplace(net.constants)
    assert equal_at_random(derived, compact)
    assert part == norm_compact(net, block, chains)[0]
    # and the textbook formula by hand, where the sizes are numbers
    x = block.input
    if all(k.is_Integer for k in x.shape):
        rng = np.random.default_rng(2)
        X, G = rng.normal(size=tuple(map(int, x.shape))), rng.normal(size=tuple(map(int, g.shape)))
        axis = int((net.layout == "AW") == (block.kind == "layer norm"))   # what the statistics run along
        got = lambdify([x, g], compact)(X, G)
        assert np.allclose(got, layer_norm_backward_by_hand(X, G, float(net.constants[eps]), axis))


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdfinfo") is None, reason="needs pdflatex")
@pytest.mark.xfail(reason="12 pages: the symbol table and summary do not yet break across pages, the algorithm is "
                          "not yet a section to switch off, and layer norm's six chains each take their own", strict=False)
def test_the_transformer_document_fits_its_budget(tmp_path):
    from derive.documents import write
    write(derive.backprop(EXAMPLES["block-transformer"].build()), tmp_path)
    pdf = tmp_path / "derivation.pdf"
    pages = int(next(line.split()[1] for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                                   text=True).stdout.splitlines()
                     if line.startswith("Pages:")))
    assert pages <= 6
