"""One verify for every network: each block class's backward pass against central differences of its own forward
pass, registered losses on networks of blocks, mistakes injected into a network of blocks caught, Gauss–Newton and
Hessian-vector products of networks that end without a dense layer, a block kind verify knows by its forward pass
only, exact proofs and hints for networks of blocks."""
import numpy as np
import pytest
import sympy as sp

import derive
import verify
from verify import blocks
from verify.numeric import central_difference

from tests.test_mutations import Mutated


@pytest.fixture
def logcosh():
    """logcosh registered from the public API, removed again after the test."""
    from derive.core import registry

    derive.register_loss("logcosh", lambda a, y: sp.log(sp.cosh(a - y)))
    yield "logcosh"
    registry.LOSSES.pop("logcosh")


def mutated(result, change, keys, program=None):
    """result whose program `program` returns the blocks `keys` changed by `change` (test_mutations' Mutated)."""
    return Mutated(result, program, keys, lambda G, hessian=False: change(G))


def _plain(inputs, blocks_, loss="half_sse", layout="AW", samples=4, weight_decay=0.0):
    return {"title": "plain", "inputs": inputs, "samples": samples, "layout": layout, "reduction": "mean",
            "weight_decay": weight_decay, "loss": loss, "blocks": blocks_}


def _dense(index, units, activation="tanh", **more):
    return {"kind": "dense", "index": index, "units": units, "bias": True, "tie": None, "activation": activation,
            **more}


# one block of each kind between two dense layers, so that its backward pass's ∂L/∂x reaches W1
ONE_OF_EACH = {
    "dense": {"kind": "dense", "units": 3, "bias": True, "tie": None, "activation": "sigmoid"},
    "tied dense": {"kind": "dense", "units": 3, "bias": False, "tie": "W1", "activation": "tanh"},
    "residual": {"kind": "residual", "layers": [_dense(20, 4), _dense(21, 3, "identity")]},
    "layer norm": {"kind": "layer norm", "eps": 1e-5},
    "self-attention": {"kind": "self-attention", "d_k": 2, "heads": 2, "causal": True},
    "convolution": {"kind": "convolution", "channels": 3, "width": 2, "stride": 2, "padding": 1, "activation": "tanh"},
    "batch norm": {"kind": "batch norm", "eps": 1e-5},
    "dropout": {"kind": "dropout", "p": 0.25},
    "max pool": {"kind": "max pool", "width": 2, "stride": 1},
}


@pytest.mark.parametrize("layout", ["AW", "WA"])
@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
def test_every_block_class_backward_pass_equals_central_differences_of_its_forward_pass(kind, layout):
    inner = {**ONE_OF_EACH[kind], "index": 2}
    tied = kind == "tied dense"   # W1 maps 3 → 3 so that its transpose fits
    spec = _plain(3, [_dense(1, 3), inner, _dense(3, 2, "identity")], layout=layout, samples=5, weight_decay=0.3)
    ref = blocks.Reference(spec)
    arrays = ref.draw(ref.shapes({}), np.random.default_rng(1))
    loss, grads = ref.run(arrays)
    assert set(grads) == set(ref.params) and (not tied or "W2" not in grads)
    for name, G in grads.items():
        numeric = central_difference(lambda **a: ref.loss(a), arrays, name)
        assert np.allclose(G, numeric, rtol=1e-6, atol=1e-8), (kind, name)


@pytest.mark.parametrize("kind", ["recurrent", "GRU", "LSTM"])
def test_the_sequence_blocks_backward_passes_equal_central_differences_of_their_forward_passes(kind):
    spec = _plain(2, [{"kind": kind, "index": 1, "hidden": 3, "steps": 3, "activation": "tanh"},
                      _dense(2, 2, "identity")], layout="WtA", weight_decay=0.2)
    ref = blocks.Reference(spec)
    arrays = ref.draw(ref.shapes({}), np.random.default_rng(2))
    for name, G in ref.run(arrays)[1].items():
        assert np.allclose(G, central_difference(lambda **a: ref.loss(a), arrays, name), rtol=1e-6, atol=1e-8), name


@pytest.mark.parametrize("layers", [[derive.LayerNorm(), derive.Dense(2, "identity")],
                                    [derive.Conv1D(2, 2, activation="tanh"), derive.Conv1D(2, 2)]],
                         ids=["layer norm, dense", "conv1d"])
def test_a_registered_loss_verifies_on_networks_of_blocks_and_a_wrong_gradient_fails(layers, logcosh):
    net = derive.Network(3, layers, loss=logcosh, samples=5)
    result = derive.backprop(net)
    report = verify.check(result, trials=2)
    assert report.passed and {"reference", "finite differences"} <= {r.check for r in report.rows}, str(report)
    first = net.parameters[0].name
    wrong = verify.check(mutated(result, lambda G: G * 1.001, {first}), trials=1)
    assert not wrong.passed and {r.parameter for r in wrong.failures()} == {first}, str(wrong)
    # the reference's loss is ℓ(a, y) = log cosh(a − y) summed, over the samples: by hand here
    plain = net.specification()
    arrays = blocks.draw(plain, blocks.shapes(plain, {}), np.random.default_rng(0))
    ref = blocks.Reference(plain)
    out = ref.output(arrays)[0]
    Y = ref.oriented("Y", arrays["Y"])
    assert np.isclose(ref.loss(arrays), np.sum(np.log(np.cosh(out - Y))) / out.shape[0], rtol=1e-12)


MUTANTS = {"zeroed": np.zeros_like, "sign flipped": lambda G: -G, "doubled": lambda G: 2 * G,
           "transposed": np.transpose, "NaN": lambda G: np.full(np.shape(G), np.nan)}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_of_a_network_of_blocks_is_caught_by_check_and_the_assertion(mutant):
    net = derive.Network(3, [derive.Residual([derive.Dense(3, "tanh")]), derive.LayerNorm(),
                             derive.SelfAttention(2), derive.Dense(2, "identity")], samples=4, weight_decay=0.1)
    result = derive.backprop(net)
    assert verify.check(result, trials=1, exact_proof=False).passed
    for P in net.parameters:
        if mutant == "transposed" and P.shape[0] == P.shape[1]:
            continue   # a square block transposed keeps its shape: caught by the values, but not always
        wrong = mutated(result, MUTANTS[mutant], {P.name})
        report = verify.check(wrong, trials=1, exact_proof=False)
        assert not report.passed and P.name in {r.parameter for r in report.failures()}, (P.name, str(report))
        with pytest.raises(AssertionError, match=P.name):
            verify.assert_gradients_match(wrong.numpy(), net, trials=1)


def test_hints_name_a_blocks_classic_mistake_and_a_flipped_sign():
    net = derive.Network(3, [derive.Dense(4, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")], samples=4)
    plain = net.specification()
    right = derive.backprop(net).numpy()

    def ln_without_mean_terms(**arrays):
        return blocks.loss_and_gradients(plain, arrays, mistake="layer norm")[1]
    with pytest.raises(AssertionError, match="this mistake gives: layer norm without the mean and variance terms"):
        verify.assert_gradients_match(ln_without_mean_terms, net, weight_decay=0)
    with pytest.raises(AssertionError, match="W3 +wrong .*hint: the sign is flipped"):
        verify.assert_gradients_match(lambda **a: {k: -v if k == "W3" else v for k, v in right(**a).items()}, net)


ENDINGS = {
    "layer norm": lambda: derive.Network(3, [derive.Dense(3, "tanh"), derive.LayerNorm()], samples=4,
                                         weight_decay=0.1),
    "conv1d, tanh": lambda: derive.Network(2, [derive.Conv1D(3, 2, activation="tanh")], layout="WA", samples=5),
    "conv1d": lambda: derive.Network(2, [derive.Dense(3, "sigmoid"), derive.Conv1D(2, 2)], samples=5),
    "recurrent": lambda: derive.Network(2, [derive.Recurrent(3, 2)], samples=3),
    "batch norm": lambda: derive.Network(3, [derive.Dense(3, "tanh"), derive.BatchNorm()], samples=4, layout="AW"),
    "dropout": lambda: derive.Network(3, [derive.Dense(3, "tanh"), derive.Dropout(0.25)], samples=4),
    "GRU": lambda: derive.Network(2, [derive.GRU(2, 2)], samples=3, layout="WtA"),
    "LSTM": lambda: derive.Network(2, [derive.LSTM(2, 2)], samples=3, weight_decay=0.1),
    "embedding, max pool": lambda: derive.Network(4, [derive.Embedding(4, 3), derive.MaxPool1D(2)], samples=4),
}


@pytest.mark.parametrize("kind", ["hvp", "gauss_newton"])
@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_products_of_networks_that_do_not_end_with_a_dense_layer(ending, kind):
    net = ENDINGS[ending]()
    result = derive.backprop(net)
    report = verify.check_products(result, kind, trials=2)
    assert report.passed, str(report)
    if kind == "gauss_newton":
        split = "at Z of the last" if ending in ("conv1d, tanh", "recurrent") else "at the network's output A"
        assert any(split in note for note in report.notes), report.notes
    verify.assert_hvp_match(result.numpy(kind), net, kind=kind, trials=1)
    wrong = mutated(result, lambda G: 2 * G, {net.parameters[0].name}, kind)
    assert not verify.check_products(wrong, kind, trials=1).passed
    with pytest.raises(AssertionError):
        verify.assert_hvp_match(wrong.numpy(kind), net, kind=kind, trials=1)


def test_gauss_newton_of_a_layer_norm_output_is_j_transpose_j_over_m():
    # half the squared error of the output A, mean over m samples: H_L = I/m, so G v = Jᵀ J v / m, J by columns
    spec = _plain(3, [_dense(1, 3), {"kind": "layer norm", "index": 2, "eps": 1e-5}], samples=4)
    ref = blocks.Reference(spec)
    rng = np.random.default_rng(3)
    arrays = ref.draw(ref.shapes({}), rng)
    names = list(ref.params)
    V = {k: rng.normal(size=arrays[k].shape) for k in names}
    flat = np.concatenate([arrays[k].ravel() for k in names])

    def output(theta):
        values, at = dict(arrays), 0
        for k in names:
            values[k], at = theta[at:at + arrays[k].size].reshape(arrays[k].shape), at + arrays[k].size
        return ref.output(values)[0].ravel()
    J = np.column_stack([(output(flat + 1e-6 * e) - output(flat - 1e-6 * e)) / 2e-6 for e in np.eye(flat.size)])
    Gv = J.T @ J @ np.concatenate([V[k].ravel() for k in names]) / 4
    got = blocks.gauss_newton_product(spec, arrays, V)
    assert np.allclose(np.concatenate([got[k].ravel() for k in names]), Gv, rtol=1e-6, atol=1e-9)


class ForwardOnlyLayerNorm(blocks.LayerNorm):
    """A layer norm verify knows by its forward pass only (as a user's own block would be)."""

    kind = "forward-only layer norm"
    backward = None
    explicit = None


@pytest.fixture
def forward_only():
    verify.register_block(ForwardOnlyLayerNorm.kind, ForwardOnlyLayerNorm)
    yield ForwardOnlyLayerNorm.kind
    blocks.KINDS.pop(ForwardOnlyLayerNorm.kind)


class Renamed(Mutated):
    """A derived result whose layer norms verify reads as the kind `kind` (the blocks `keys` changed by `change`)."""

    def __init__(self, result, kind, change=None, keys=()):
        change = change or (lambda G: G)
        super().__init__(result, None, keys, lambda G, hessian=False: change(G))
        self.kind = kind

    def specification(self):
        plain = self.result.specification()
        blocks_ = [{**b, "kind": self.kind} if b["kind"] == "layer norm" else b for b in plain["network"]["blocks"]]
        return {**plain, "network": {**plain["network"], "blocks": blocks_}}


def test_a_block_with_a_forward_pass_only_is_checked_by_central_differences(forward_only):
    net = derive.Network(3, [derive.Dense(3, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")], samples=4,
                         weight_decay=0.1)
    result = derive.backprop(net)
    plain = net.specification()
    arrays = blocks.draw(plain, blocks.shapes(plain, {}), np.random.default_rng(0))
    by_hand = blocks.loss_and_gradients(plain, arrays)
    renamed = {**plain, "blocks": [{**b, "kind": forward_only} if b["kind"] == "layer norm" else b
                                   for b in plain["blocks"]]}
    numeric = blocks.loss_and_gradients(renamed, arrays)
    assert numeric[0] == by_hand[0] and set(numeric[1]) == set(by_hand[1])
    for k, G in by_hand[1].items():
        assert np.allclose(numeric[1][k], G, rtol=1e-6, atol=1e-9), k
    report = verify.check(Renamed(result, forward_only), trials=1)
    assert report.passed and {r.check for r in report.rows} == {"finite differences"}, str(report)
    assert any("central differences of the reference's loss" in n for n in report.notes), report.notes
    assert any("exact proof skipped" in n for n in report.notes), report.notes
    wrong = verify.check(Renamed(result, forward_only, lambda G: -G, {"gamma2"}), trials=1)
    assert not wrong.passed and {r.parameter for r in wrong.failures()} == {"gamma2"}, str(wrong)
    assert verify.check_products(Renamed(result, forward_only), "gauss_newton", trials=1).passed


def test_a_block_kind_without_a_verify_class_is_an_error_naming_it_and_how_to_register_one():
    spec = _plain(2, [{"kind": "rms norm", "index": 1}])
    with pytest.raises(ValueError, match=r"block kind 'rms norm'.*verify\.register_block\('rms norm', cls\)"):
        blocks.Reference(spec)
    with pytest.raises(TypeError, match="not a subclass of verify.blocks.Block"):
        verify.register_block("rms norm", object)


def test_rows_say_recursion_for_dense_chains_and_reference_for_blocks_and_small_blocks_are_proved_exactly():
    mlp = verify.check(derive.backprop(derive.mlp([2, 2, 1], activation="tanh", samples=2)), trials=1)
    assert {"recursion", "exact (SymPy diff)"} <= {r.check for r in mlp.rows} and mlp.passed, str(mlp)
    net = derive.Network(2, [derive.LayerNorm(), derive.Dense(1, "sigmoid")], loss="bce", samples=2)
    report = verify.check(derive.backprop(net), trials=1)
    assert report.passed and {r.check for r in report.rows} == {"reference", "finite differences",
                                                                 "exact (SymPy diff)"}, str(report)
    wrong = verify.check(mutated(derive.backprop(net), lambda G: G * (1 + 1e-9), {"W2"}), trials=1, exact_proof=True)
    assert {r.parameter for r in wrong.rows if r.check == "exact (SymPy diff)"} == {"gamma1", "beta1", "W2", "b2"}


def test_the_hessian_vector_product_of_a_network_of_blocks_is_proved_exactly():
    net = derive.Network(1, [derive.Conv1D(1, 2, activation="tanh")], samples=3)
    report = verify.check_products(derive.backprop(net), "hvp", trials=1, exact_proof=True)
    assert report.passed and {r.check for r in report.rows} == {"central differences", "exact (SymPy diff²)"}, \
        str(report)
