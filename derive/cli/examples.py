"""The seed derivations (../shared/SEEDS.md) as named examples that `derive` reproduces."""
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from ..engine.derivation import derivation
from ..networks.backprop import backprop
from ..networks.network import mlp


def sizes(names):
    """Symbolic layer sizes, e.g. sizes("n0 n1 n2")."""
    return list(sp.symbols(names, integer=True, positive=True, seq=True))


@dataclass(frozen=True)
class Example:
    """A named case from the source material: a network (or expressions) and where it comes from."""

    name: str
    title: str
    source: str
    build: Callable  # () -> Network, or () -> [(f, X, where)] for plain expressions

    def derive(self):
        """The Backprop of the network, or the list of Derivations of the expressions."""
        built = self.build()
        if isinstance(built, list):
            return [derivation(f, X, where) for f, X, where in built]
        return backprop(built)


def _linear_map():
    # seed 004: for D = W X with ∂L/∂D = G given, dL = tr(Gᵀ dD) gives ∂L/∂W = G Xᵀ and ∂L/∂X = Wᵀ G
    n, k, m = sizes("n k m")
    W, X, G = sp.MatrixSymbol("W", n, k), sp.MatrixSymbol("X", k, m), sp.MatrixSymbol("G", n, m)
    D = sp.MatrixSymbol("D", n, m)
    f = sp.Trace(sp.MatMul(G.T, D))
    return [(f, W, {D: sp.MatMul(W, X)}), (f, X, {D: sp.MatMul(W, X)})]


_EXAMPLES = [
    Example("seed000-4-layer-linear", "4-layer network without activation, ½‖a − y‖², one sample", "seed 000 §4",
            lambda: mlp(sizes("n0:5"), activation="identity", bias=False, samples=1)),
    Example("seed000-L-layer-linear", "L-layer network without activation (L = 6 shown)", "seed 000 §5",
            lambda: mlp(sizes("n0:7"), activation="identity", bias=False, samples=1)),
    Example("seed000-4-layer-sigmoid", "4-layer network with sigmoid activations, ½‖a − y‖², one sample",
            "seed 000 §6", lambda: mlp(sizes("n0:5"), activation="sigmoid", bias=False, samples=1)),
    Example("seed000-L-layer-sigmoid", "L-layer network with sigmoid activations (L = 6 shown)", "seed 000 §7",
            lambda: mlp(sizes("n0:7"), activation="sigmoid", bias=False, samples=1)),
    Example("seed000-andrew-ng", "Andrew Ng's 4-layer network: sigmoid units, cross-entropy, δ⁽⁴⁾ = a⁽⁴⁾ − y",
            "seed 000 §8", lambda: mlp(sizes("s1:5"), activation="sigmoid", loss="bce", reduction="sum", samples=1)),
    Example("seed001-weight-decay", "K samples, biases, ½‖h(x) − y‖² averaged, weight decay λ/2 Σ‖W‖²",
            "seed 001", lambda: mlp(sizes("n1:5"), activation="sigmoid", loss="half_sse", reduction="mean",
                                    weight_decay=sp.Symbol("lambda", positive=True),
                                    samples=sp.Symbol("K", integer=True, positive=True))),
    Example("seed002-logistic-units", "logistic units, E = ½(t − y)², no bias, per-neuron chain rule", "seed 002",
            lambda: mlp(sizes("n_i n_j n_k"), activation="sigmoid", bias=False, samples=1)),
    Example("seed003-1-1-1", "the 1-1-1 network, C = (a⁽ᴸ⁾ − y)², including ∂C/∂a⁽ᴸ⁻¹⁾", "seed 003",
            lambda: mlp([1, 1, 1], activation="sigmoid", loss="mse", samples=1)),
    Example("seed003-general", "general network, C = (1/N_L) Σ_j (a_j − y_j)², one sample", "seed 003",
            lambda: mlp(sizes("N0:3"), activation="sigmoid", loss="mse", samples=1)),
    Example("seed004-logistic-regression", "logistic regression with BCE: dz = a − y, dw = (1/m) Σ x (a − y)",
            "seed 004", lambda: mlp([*sizes("n"), 1], activation="sigmoid", loss="bce", layout="WtA")),
    Example("seed004-two-layer", "two-layer sigmoid batch network Z = WᵀX + b1ᵀ, BCE summed: ∂L/∂Z2 = A2 − Y",
            "seed 004", lambda: mlp(sizes("n0:3"), activation="sigmoid", loss="bce", layout="WtA", reduction="sum")),
    Example("seed004-linear-map", "D = W X: ∂L/∂W = (∂L/∂D) Xᵀ, ∂L/∂X = Wᵀ (∂L/∂D)", "seed 004", _linear_map),
]

EXAMPLES = {example.name: example for example in _EXAMPLES}
