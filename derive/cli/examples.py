"""The seed derivations (../shared/SEEDS.md) as named examples that `derive` reproduces."""
from dataclasses import dataclass
from typing import Callable, Optional

import sympy as sp

from ..core.functions import sigmoid
from ..documents.blocks import Equations, Heading, Text
from ..documents.second import r_blocks
from ..engine.derivation import derivation
from ..engine.second import hessian_derivation
from ..networks.backprop import backprop
from ..networks.blocks import Conv1D, Dense, LayerNorm, Recurrent, Residual, SelfAttention
from ..networks.network import Network, mlp


def sizes(names):
    """Symbolic layer sizes, e.g. sizes("n0 n1 n2")."""
    return list(sp.symbols(names, integer=True, positive=True, seq=True))


@dataclass(frozen=True)
class Example:
    """A named case from the source material: a network (or expressions) and where it comes from."""

    name: str
    title: str
    source: str
    build: Callable  # () -> Network, or () -> [(f, X, where)] for plain expressions, or (f, X, where) for a Hessian
    appendix: Optional[Callable] = None  # () -> document blocks in the seed's own notation
    end: Optional[Callable] = None       # () -> document blocks that close it (a second-order part)

    def derive(self):
        """The Backprop of the network, the list of Derivations of the expressions, or a Hessian's derivation."""
        built = self.build()
        if isinstance(built, tuple):
            return hessian_derivation(*built)
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


def _logistic_hessian():
    # L2-regularised logistic regression: f = −(1/m)[yᵀ log a + (1 − y)ᵀ log(1 − a)] + (λ/2) wᵀw, a = σ(X w)
    m, n = sizes("m n")
    X, w, y, a = (sp.MatrixSymbol(k, *s) for k, s in (("X", (m, n)), ("w", (n, 1)), ("y", (m, 1)), ("a", (m, 1))))
    lam, one = sp.Symbol("lambda", positive=True), sp.OneMatrix(m, 1)
    f = -sp.Trace(y.T * a.applyfunc(sp.log) + (one - y).T * (one - a).applyfunc(sp.log)) / m \
        + lam / 2 * sp.Trace(w.T * w)
    return f, w, {a: (X * w).applyfunc(sigmoid)}


def _r_network():
    return mlp(sizes("n0:3"), activation="tanh", output="softmax", loss="softmax_ce")


TO = r"\;\leftrightarrow\;"   # this document's form, his form


def _andrew_ng():
    """Seed 000 §8: the derivation in Andrew Ng's notation (layers counted from the input, Θ, a, g′, Δ)."""
    mapping = Equations((
        ("X", "a^{(1)} = x", "the input is his layer 1", TO),
        (r"W^{(l)}, b^{(l)}", r"\Theta^{(l)} = [\,b^{(l)}\ W^{(l)}\,]", "his bias unit, 1, meets the column b", TO),
        (r"Z^{(l)},\ A^{(l)}", r"z^{(l+1)},\ a^{(l+1)}", "one layer later in his count", TO),
        (r"\delta^{(l)}", r"\delta^{(l+1)}", "", TO),
        (r"A^{(l)} \odot (\mathbf{1} - A^{(l)})", r"g^{\prime}(z^{(l+1)}) = a^{(l+1)} .\!* (1 - a^{(l+1)})", "", TO)))
    forms = Equations((
        (r"\delta^{(3)} = A^{(3)} - Y", r"\delta^{(4)} = a^{(4)} - y", "output layer", TO),
        (r"\delta^{(l)} = ({W^{(l+1)}}^{\top} \delta^{(l+1)}) \odot \sigma^{\prime}(Z^{(l)})",
         r"\delta^{(l+1)} = (\Theta^{(l+1)})^{\top} \delta^{(l+2)} .\!* g^{\prime}(z^{(l+1)})", "recursion", TO),
        (r"\delta^{(l)} = \operatorname{diag}(\sigma^{\prime}(Z^{(l)}))\, {W^{(l+1)}}^{\top} \delta^{(l+1)}", "",
         "our diagonal-matrix form"),
        (r"\frac{\partial L}{\partial W^{(l)}} = \delta^{(l)} {A^{(l-1)}}^{\top}",
         r"\frac{\partial J}{\partial \Theta^{(l)}_{ij}} = a^{(l)}_j \delta^{(l+1)}_i", "one entry", TO),
        ("", r"\Delta^{(l)} := \Delta^{(l)} + \delta^{(l+1)} (a^{(l)})^{\top}", "summed over the samples", TO),
    ))
    return [Heading("In Andrew Ng's notation"),
            Text((("text", "The same network with his names: he counts layers from the input, so the activations, "
                           "pre-activations and errors move up by one while the weights keep their index; left, "
                           "this document; right, his notes."),)), mapping,
            Text((("text", "The three forms of the result agree: the Hadamard form above, the diagonal-matrix form, "
                           "and his entry-wise rule with its accumulator over the samples. His "),
                  ("math", r"\Theta"), ("text", " carries the bias column, so his recursion drops the bias unit's "
                                                 "error "), ("math", r"\delta_0"),
                  ("text", "; his gradient is "), ("math", r"D^{(l)} = \Delta^{(l)}/m + \lambda \Theta^{(l)}"),
                  ("text", " (the bias column "), ("math", "j = 0"), ("text", " not regularised), which is ours for "
                                                                     "one sample, "), ("math", "m = 1"),
                  ("text", ", and no weight decay, "), ("math", r"\lambda = 0"), ("text", ":"))), forms]


_EXAMPLES = [
    Example("seed000-4-layer-linear", "A four-layer linear network with half the squared error, one sample", "seed 000 §4",
            lambda: mlp(sizes("n0:5"), activation="identity", bias=False, samples=1)),
    Example("seed000-L-layer-linear", "A deep linear network (six layers shown) with half the squared error, one sample", "seed 000 §5",
            lambda: mlp(sizes("n0:7"), activation="identity", bias=False, samples=1)),
    Example("seed000-4-layer-sigmoid", "A four-layer sigmoid network with half the squared error, one sample",
            "seed 000 §6", lambda: mlp(sizes("n0:5"), activation="sigmoid", bias=False, samples=1)),
    Example("seed000-L-layer-sigmoid", "A deep sigmoid network (six layers shown) with half the squared error, one sample", "seed 000 §7",
            lambda: mlp(sizes("n0:7"), activation="sigmoid", bias=False, samples=1)),
    Example("seed000-andrew-ng", "Andrew Ng's four-layer network (three weight layers): sigmoid units and "
            "cross-entropy", "seed 000 §8",
            lambda: mlp(sizes("s1:5"), activation="sigmoid", loss="bce", reduction="sum", samples=1), _andrew_ng),
    Example("seed001-weight-decay", "A sigmoid network over K samples: mean half squared error and weight decay",
            "seed 001", lambda: mlp(sizes("n1:5"), activation="sigmoid", loss="half_sse", reduction="mean",
                                    weight_decay=sp.Symbol("lambda", positive=True),
                                    samples=sp.Symbol("K", integer=True, positive=True))),
    Example("seed002-logistic-units", "Logistic units without bias and half the squared error", "seed 002",
            lambda: mlp(sizes("n_i n_j n_k"), activation="sigmoid", bias=False, samples=1)),
    Example("seed003-1-1-1", "The 1-1-1 network by the scalar chain rule, including ∂C/∂a⁽¹⁾", "seed 003",
            lambda: mlp([1, 1, 1], activation="sigmoid", loss="mse", samples=1)),
    Example("seed003-general", "A sigmoid network with the mean squared error over its outputs, one sample", "seed 003",
            lambda: mlp(sizes("N0:3"), activation="sigmoid", loss="mse", samples=1)),
    Example("seed004-logistic-regression", "Logistic regression with binary cross-entropy averaged over m samples",
            "seed 004", lambda: mlp([*sizes("n"), 1], activation="sigmoid", loss="bce", layout="WtA")),
    Example("seed004-two-layer", "A two-layer sigmoid network with binary cross-entropy summed over the batch",
            "seed 004", lambda: mlp(sizes("n0:3"), activation="sigmoid", loss="bce", layout="WtA", reduction="sum")),
    Example("seed004-linear-map", "A linear map D = W X: ∂L/∂W and ∂L/∂X from ∂L/∂D", "seed 004", _linear_map),
    Example("second-logistic-hessian", "The Hessian of L2-regularised logistic regression, from the second "
            "differential", "second order", _logistic_hessian),
    Example("second-mlp-r-recursion", "A two-layer tanh network with a softmax output: the δ recursion, then the "
            "R-recursion for Hessian-vector and Gauss–Newton products", "second order", _r_network,
            end=lambda: r_blocks(backprop(_r_network()))),
    Example("block-transformer", "A transformer block: layer norm, two-head self-attention and a residual, layer norm, "
            "an MLP and a residual, then a softmax output", "blocks",
            lambda: Network("d", [Residual([LayerNorm(), SelfAttention(4, heads=2)]),
                                  Residual([LayerNorm(), Dense("u", "relu"), Dense("d", "identity")]),
                                  Dense("c", "softmax")], loss="softmax_ce", layout="AW")),
    Example("block-conv1d", "Two 1-D convolutions over time (stride 2 and padding 1, then width 2) and a linear "
            "readout", "blocks",
            lambda: Network(2, [Conv1D(3, 3, stride=2, padding=1, activation="tanh"), Conv1D(2, 2, activation="tanh"),
                                Dense(1, "identity")], layout="AW", samples=8)),
    Example("block-recurrent", "A recurrent (Elman) layer over three time steps and a sigmoid output: "
            "backpropagation through time", "blocks",
            lambda: Network("n", [Recurrent("n_h", 3), Dense(1, "sigmoid")], loss="bce", layout="WA")),
]

EXAMPLES = {example.name: example for example in _EXAMPLES}
