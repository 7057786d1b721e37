"""A block written by a user, one class registered once (an RMS norm, as the README's "Extending" shows): derived,
compiled and checked against the user's own NumPy forward pass by central differences, documented; and the
registration's refusals."""
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import sympy as sp

import derive
import verify
from derive import Block, arg
from derive.networks import blocks as registry

from tests.test_mutations import Mutated

EPS = 1e-6


@dataclass(frozen=True)
class RMSNorm(Block):
    """y = g ⊙ x / √(mean(x²) + ε) per sample."""

    key: ClassVar[str] = "rms_norm"
    kind: ClassVar[str] = "RMS norm"
    eps: float = arg(float, "the constant ε added to the mean square", EPS)

    def build(self, b, X, last):
        l, where = b.layer(self.kind)
        eps = b.constant("epsilon", sp.Rational(str(self.eps)))
        g = b.parameter("g", (b.n, 1), f"the gain of layer {l}", decay=False, init="ones")
        q, s, A = b.statistic(f"q{l}"), b.statistic(f"s{l}"), b.matrix(f"A{l}", b.n)
        definitions = [(q, b.per_sample_sum(sp.HadamardPower(X, 2)) / b.n),   # q = mean of x² per sample
                       (s, sp.HadamardPower(q + eps * sp.OneMatrix(*q.shape), sp.Rational(-1, 2))),
                       (A, sp.HadamardProduct(X, b.spread(s), b.every_sample(g)))]   # A = X ⊙ s 1ᵀ ⊙ 1 gᵀ
        meanings = [(q, "the mean square of each sample's features"), (s, "one over the RMS, per sample"),
                    (A, f"the output of layer {l}")]
        return b.built(self, l, f"Layer {l}: RMS norm", X, A, definitions, (g,), meanings)


@pytest.fixture
def rms_norm():
    saved = dict(registry.BLOCKS)
    derive.register_block(RMSNorm)
    yield RMSNorm
    registry.BLOCKS.clear()
    registry.BLOCKS.update(saved)


def user_loss(v, layout):
    """The user's own forward pass in NumPy (rows are samples): tanh dense, RMS norm, linear dense, half SSE / m."""
    T = (lambda M: M) if layout == "AW" else (lambda M: M.T)
    W1, W3 = (v["W1"], v["W3"]) if layout != "WA" else (v["W1"].T, v["W3"].T)
    H = np.tanh(T(v["X"]) @ W1 + v["b1"].T)
    R = H / np.sqrt((H ** 2).mean(axis=1, keepdims=True) + EPS) * v["g2"].T
    A = R @ W3 + v["b3"].T
    return 0.5 * np.sum((A - T(v["Y"])) ** 2) / A.shape[0]


@pytest.mark.parametrize("layout", ["AW", "WA", "WtA"])
def test_a_user_block_derives_compiles_and_matches_central_differences(rms_norm, layout):
    net = derive.Network(4, [derive.Dense(4, "tanh"), rms_norm(), derive.Dense(2, "identity")], layout=layout,
                         samples=5)
    bp = derive.backprop(net)
    assert [p.name for p in net.parameters] == ["W1", "b1", "g2", "W3", "b3"]
    assert [P.name for P in net.weights] == ["W1", "W3"]   # g2 is declared decay=False
    rng = np.random.default_rng(1)
    shapes = {M.name: tuple(int(k) for k in M.shape) for M in (net.X, net.Y, *net.parameters)}
    values = {k: rng.normal(size=s) for k, s in shapes.items()}
    got = bp.numpy()(**values)
    for k in ("W1", "b1", "g2", "W3", "b3"):
        numeric = np.zeros(shapes[k])
        for i in np.ndindex(*shapes[k]):
            up, down = ({**values, k: values[k].copy()} for _ in range(2))
            up[k][i] += 1e-6
            down[k][i] -= 1e-6
            numeric[i] = (user_loss(up, layout) - user_loss(down, layout)) / 2e-6
        np.testing.assert_allclose(got[k], numeric, rtol=1e-6, atol=1e-8, err_msg=k)


def test_a_user_block_is_documented_with_its_meanings_and_every_gradient(rms_norm, tmp_path):
    net = derive.Network(3, [rms_norm(), derive.Dense(2, "identity")], layout="AW", samples=4)
    derive.write(derive.backprop(net), tmp_path, pdf=False)
    tex = (tmp_path / "derivation.tex").read_text(encoding="utf-8")
    assert "the gain of layer 1" in tex and "the mean square of each sample's features" in tex
    assert r"\frac{\partial L}{\partial g^{(1)}}" in tex


def test_a_spec_file_reads_a_registered_blocks_keys(rms_norm, tmp_path):
    from derive.cli.spec import _layers
    from derive.errors import UsageError

    assert _layers([{"kind": "rms_norm", "eps": 1e-3}]) == [rms_norm(1e-3)]
    with pytest.raises(UsageError, match=r"unknown key layers\[0\]\.gain for kind 'rms_norm'; valid keys: eps"):
        _layers([{"kind": "rms_norm", "gain": 2.0}])
    with pytest.raises(UsageError, match=r"layers\[0\]\.eps = 'small' has the wrong type"):
        _layers([{"kind": "rms_norm", "eps": "small"}])
    with pytest.raises(UsageError, match=r"layers\[0\] \(kind 'conv1d'\) needs channels, width"):
        _layers([{"kind": "conv1d"}])


def test_every_built_in_block_declares_its_arguments():
    assert [a.name for a in derive.Conv1D.arguments()] == ["channels", "width", "stride", "padding", "activation"]
    conv = {a.name: a for a in derive.Conv1D.arguments()}
    assert conv["channels"].required and not conv["stride"].required and conv["stride"].default == 1
    assert all(a.help for cls in registry.BLOCKS.values() for a in cls.arguments())
    assert list(registry.BLOCKS) == ["dense", "residual", "layer_norm", "self_attention", "conv1d", "recurrent",
                                    "batch_norm", "dropout", "embedding", "gru", "lstm", "maxpool1d"]


def test_weight_decay_reads_the_parameters_metadata():
    net = derive.Network(2, [derive.Conv1D(2, 2), derive.LayerNorm(), derive.Dense(1, "identity")], layout="AW",
                         samples=4, weight_decay=0.5)
    info = net.parameter_info
    assert [(p.role, p.layer, p.decay) for p in info.values()] == [
        ("K", 1, True), ("b", 1, False), ("gamma", 2, False), ("beta", 2, False), ("W", 3, True), ("b", 3, False)]
    assert [P.name for P in net.weights] == ["K1", "W3"]
    assert info["K1"].meaning == "the kernel of layer 1, one block of rows per tap"


def test_registration_refuses_what_is_not_a_block():
    class NotADataclass(Block):
        key, kind = "x", "x"

        def build(self, b, A, last):
            return None

    @dataclass(frozen=True)
    class NoKey(Block):
        def build(self, b, A, last):
            return None

    @dataclass(frozen=True)
    class Clash(Block):
        key: ClassVar[str] = "dense"
        kind: ClassVar[str] = "another dense"

        def build(self, b, A, last):
            return None

    @dataclass(frozen=True)
    class NoBuild(Block):
        key: ClassVar[str] = "nothing"
        kind: ClassVar[str] = "nothing"

    for cls, message in [(NotADataclass, "is not a dataclass subclassing derive.Block"), (NoKey, "needs a `key`"),
                         (Clash, "key 'dense' is Dense's already"), (NoBuild, "has no build"),
                         (int, "is not a dataclass")]:
        with pytest.raises(derive.InvalidArgument, match=message):
            derive.register_block(cls)
    with pytest.raises(derive.InvalidArgument, match="is not a registered block"):
        derive.Network(2, [RMSNorm()], samples=3)   # not registered (outside the fixture)


class RMSNormReference(verify.blocks.Block):
    """The user's own forward pass for verify (rows are samples): x / √(mean(x²) + ε) ⊙ gᵀ; no backward pass."""

    kind = "RMS norm"

    def parameters(self, n, size):
        return [verify.blocks.Param(self.name("g"), (n, 1))], n

    def forward(self, x, a):
        return x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + self.spec["eps"]) * a[self.name("g")].T, None


@pytest.fixture
def rms_reference():
    saved = dict(verify.blocks.KINDS)
    verify.register_block("RMS norm", RMSNormReference)
    yield
    verify.blocks.KINDS.clear()
    verify.blocks.KINDS.update(saved)


@pytest.mark.parametrize("layout", ["AW", "WA"])
def test_a_user_block_verifies_against_its_own_forward_pass(rms_norm, rms_reference, layout):
    net = derive.Network(4, [derive.Dense(4, "tanh"), rms_norm(), derive.Dense(2, "identity")], layout=layout,
                         samples=5, loss="logcosh" if "logcosh" in derive.LOSSES else "half_sse")
    bp = derive.backprop(net)
    report = verify.check(bp)
    assert report.passed, str(report)
    assert any("central differences" in note for note in report.notes), report.notes

    # the derived program with ∂L/∂g scaled by 1.01: verify must fail it
    assert not verify.check(Mutated(bp, None, {"g2"}, lambda G, hessian=False: G * 1.01)).passed


def test_a_block_without_a_verify_class_is_refused_by_name(rms_norm):
    net = derive.Network(3, [rms_norm(), derive.Dense(2, "identity")], layout="AW", samples=4)
    with pytest.raises(ValueError, match=r"no verify class for block kind 'RMS norm'; register one with "
                                         r"verify.register_block"):
        verify.check(derive.backprop(net))
