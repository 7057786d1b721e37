"""Networks of dense layers as symbolic matrices: the forward pass as named definitions, and the loss."""
from collections.abc import Sequence
import math
import re

import numpy as np
import sympy as sp

from ..core import registry
from ..core.expr import matmul, tp
from ..core.functions import ELT, apply
from ..core.registry import ACTIVATIONS
from ..errors import InvalidArgument
from .blocks import Builder, Dense, Layer, flatten, pre_activation, size as _size, weight_shape  # noqa: F401 (API)

LAYOUTS = ("WA", "WtA", "AW")
"""WA: Z = W A + b 1ᵀ, samples as columns; WtA: Z = Wᵀ A + b 1ᵀ; AW: Z = A W + 1 bᵀ, samples as rows."""
REDUCTIONS = ("mean", "sum")
"""How the loss combines the samples: their mean, or their sum."""
SAMPLES = sp.Symbol("m", integer=True, positive=True)


def _choice(value, valid, what, where):
    if value not in valid:
        raise InvalidArgument(f"{where}: unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def _value(size, sizes, name):
    """A parameter's size as an int: an integer, or a symbol that `sizes` ({symbol or its name: int}) gives."""
    given = {str(k): v for k, v in (sizes or {}).items()}
    value = sp.sympify(size)
    value = value.xreplace({s: sp.Integer(given[str(s)]) for s in value.free_symbols if str(s) in given})
    if not value.is_Integer:
        raise InvalidArgument(f"{name}: its size {size} has no value; give it: sizes={{{str(size)!r}: …}}")
    return int(value)


def _weight_decay(value):
    """λ as a SymPy number or expression: a finite real number ≥ 0, or a SymPy expression (a symbol λ); a string is
    refused (SymPy would evaluate it)."""
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, sp.Expr)):
        raise InvalidArgument(f"weight_decay must be a number or a SymPy expression, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"weight_decay must be finite, got {value}")
    value = sp.nsimplify(value, rational=True) if isinstance(value, float) else sp.sympify(value)
    if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_real is False or (value.is_number and not value.is_real):
        raise InvalidArgument(f"weight_decay must be a finite real number, got {value}")
    if value.is_negative:
        raise InvalidArgument(f"weight_decay must be non-negative, got {value}")
    return value


class Network:
    """A network of blocks on n0 inputs (an MLP: Z^(l) = W^(l) A^(l−1) + b^(l) 1ᵀ, A^(l) = σ_l(Z^(l)), A^(0) = X).

    `layout` is "WA" (columns are samples), "WtA" (Z = WᵀA + b1ᵀ) or "AW" (rows are samples,
    Z = A W + 1 bᵀ); `samples` is m, the number of samples (1: a single sample); the loss is summed
    over the samples and divided by m when `reduction` is "mean"; `weight_decay` λ adds
    (λ/2) Σ_l ‖W^(l)‖²_F.
    """

    def __init__(self, inputs, layers, loss="half_sse", layout="WA", reduction="mean", weight_decay=0,
                 samples=SAMPLES):
        self.layout = _choice(layout, LAYOUTS, "layout", "network")
        self.reduction = _choice(reduction, REDUCTIONS, "reduction", "network")
        try:
            self.loss_entry = registry.loss(loss)
        except InvalidArgument as e:
            raise InvalidArgument(f"network: {e}") from None
        self.loss_name = self.loss_entry.name
        self.weight_decay = _weight_decay(weight_decay)
        self.m = _size(samples, "samples")
        layers = list(layers)
        if not layers:
            raise InvalidArgument("network: needs at least one layer")
        n0 = _size(inputs, "input layer 0")
        build = Builder(self.layout, self.m, n0)
        X = build.matrix("X", n0)
        self.blocks, output = build.build(layers, X, True)
        self.inputs = build.inputs or (X,)
        self.X = self.inputs[0]
        self.given = dict(build.given)   # the inputs blocks read besides X (a dropout's mask M<l>) -> their meaning
        flat = list(flatten(self.blocks))
        self.layers = tuple(b.layer for b in flat if b.layer is not None)
        self.sizes = (n0, *[(b.output.rows if self.layout != "AW" else b.output.cols) for b in flat
                            if b.kind != "residual"])
        self.samples_out = build.m
        clash = [str(n) for n in (*self.sizes, self.m) if str(n) in build.parameters or
                 any(str(n) in (Z.name, delta.name) for b in flat for Z, delta in b.deltas) or
                 any(str(n) == Z.name for b in flat for Z, _ in b.definitions) or str(n) in ("X", "Y")]
        if clash:
            raise InvalidArgument(f"network: size {clash[0]!r} has the name of one of the network's matrices "
                                  f"(X, Y, W<l>, b<l>, Z<l>, A<l>, delta<l>); name sizes n0, n1, …")
        self.Y = build.matrix("Y", self.sizes[-1], build.m)
        self.result = output
        self.forward = {Z: E for b in flat for Z, E in b.definitions}
        self.deltas = {Z: delta for b in flat for Z, delta in b.deltas}
        self.parameter_info = dict(build.parameters)   # name -> Parameter: role, layer, meaning, weight decay
        self.parameters = tuple(p.symbol for p in self.parameter_info.values())
        self.constants = dict(build.constants)   # ε of each layer norm: a symbol in the derivation, a number in code
        self.loss = self._loss()

    @property
    def L(self):
        """The number of layers."""
        return len(self.layers)

    @property
    def output(self):
        """The A = σ(Z) the network ends with: its last layer where that is a dense, convolution (with an
        activation) or recurrent layer (a Layer or an Output); None for another block."""
        return self.blocks[-1].activated

    @property
    def activated(self):
        """Every A = σ(Z) whose code form may differ: the dense layers, and the output."""
        return tuple(dict.fromkeys(x for x in (*self.layers, self.output) if x is not None))

    @property
    def weights(self):
        """The parameters weight decay penalises (their metadata says so: weights and kernels, not biases, γ, β)."""
        return tuple(p.symbol for p in self.parameter_info.values() if p.decay)

    def initial_parameters(self, seed: int = 0, sizes: dict | None = None, dtype: str = "float64") -> dict:
        """{parameter name: NumPy array}, each started as its metadata says (Parameter.init: U(−1/√fan_in, 1/√fan_in),
        zeros or ones), in the order of `parameters`, from one seed; `sizes` gives symbolic sizes their values."""
        rng = np.random.default_rng(seed)
        values = {}
        for P in self.parameter_info.values():
            shape = tuple(_value(s, sizes, P.name) for s in P.shape)
            if P.init == "uniform":
                bound = 1 / math.sqrt(_value(P.fan_in, sizes, P.name))
                values[P.name] = rng.uniform(-bound, bound, shape).astype(dtype)
            else:
                values[P.name] = (np.ones if P.init == "ones" else np.zeros)(shape, dtype=dtype)
        return values

    def dense_chain(self):
        """Whether every block is a dense layer of its own weight: what the MLP presentations (one sentence of
        widths, a generic layer l, the closed-form recursion) read."""
        return all(isinstance(b.spec, Dense) and b.spec.tie is None for b in flatten(self.blocks))

    def _loss(self):
        """The loss in terms of A^(L) and Y (the registry's trace form), reduced, plus weight decay."""
        entry = self.loss_entry
        act = self.output.activation.name if self.output is not None else "identity"
        if entry.outputs is not None and act in ACTIVATIONS and act not in entry.outputs:
            last = self.blocks[-1]
            raise InvalidArgument(f"{last.title.split(':')[0].lower()}: loss {entry.name!r} needs an output "
                                  f"activation in {', '.join(entry.outputs)} ({entry.why}), got {act!r}")
        return self._total(entry.total(self.result, self.Y, self.sizes[-1]))

    def data_loss(self):
        """The loss without its weight-decay term."""
        return self._total(self.loss_entry.total(self.result, self.Y, self.sizes[-1]), decay=False)

    def _total(self, data, decay=True):
        """The data term summed over samples, divided by m for reduction "mean", plus (λ/2) Σ ‖W‖²_F."""
        if self.reduction == "mean":
            data = data / self.samples_out
        if not decay:
            return data
        decay = sum((sp.Trace(matmul(tp(W), W)) for W in self.weights), sp.S.Zero)
        return data + self.weight_decay / 2 * decay if self.weight_decay != 0 else data

    def loss_from_logits(self):
        """The loss written with the logits Z^(L) where log A would overflow or lose precision (the registry's
        `logits` forms; for code: equal to `loss`, not a derivation)."""
        out = self.output
        logits = self.loss_entry.logits.get(out.activation.name) if out is not None else None
        return self.loss if logits is None else self._total(logits.form(out.Z, self.Y, out.A_def))

    def loss_note(self):
        """Why the code's loss is written as it is (from the logits), or None."""
        out = self.output
        logits = self.loss_entry.logits.get(out.activation.name) if out is not None else None
        return logits.note if logits else None

    def describe(self):
        """The network in words, for titles: "n0 → n1 → n2 network: tanh hidden, softmax output, loss softmax_ce
        (mean over m samples)"; a network of other blocks lists them: "network of layer norm, self-attention, …"."""
        if not self.dense_chain():
            decay = f", weight decay {self.weight_decay}" if self.weight_decay != 0 else ""
            return (f"network of {', '.join(_kinds(self.blocks))} on {self.sizes[0]} input{'s' if self.sizes[0] != 1 else ''}, loss {self.loss_name} "
                    f"({self.reduction} over {self.samples_out} sample{'s' if self.samples_out != 1 else ''}{decay})")
        acts = [layer.activation.name for layer in self.layers]
        hidden = f"{', '.join(dict.fromkeys(acts[:-1]))} hidden, " if len(acts) > 1 else ""
        decay = f", weight decay {self.weight_decay}" if self.weight_decay != 0 else ""
        return (f"{' → '.join(map(str, self.sizes))} network: {hidden}{acts[-1]} output, loss {self.loss_name} "
                f"({self.reduction} over {self.m} sample{'s' if self.m != 1 else ''}{decay})")

    def specification(self):
        """The network as plain data, for a verification written apart from derive (verify reads it): its inputs n0,
        samples, layout, reduction, λ, the loss by name with ℓ(a, y) as a SymPy Lambda, and its blocks as plain data
        (kind, position, arguments; activations by name with σ as a SymPy Lambda)."""
        entry = self.loss_entry
        return {"title": repr(self), "inputs": self.sizes[0], "samples": self.m, "layout": self.layout,
                "reduction": self.reduction, "weight_decay": self.weight_decay,
                "loss": {"name": entry.name, "function": entry.definition(), "per_output": entry.per_output},
                "blocks": [b.plain() for b in self.blocks]}

    def __repr__(self):
        if not self.dense_chain():
            return (f"Network(inputs={self.sizes[0]}, blocks=[{', '.join(_kinds(self.blocks))}], "
                    f"loss={self.loss_name!r}, layout={self.layout!r}, reduction={self.reduction!r}, "
                    f"weight_decay={self.weight_decay}, samples={self.m})")
        acts = ", ".join(layer.activation.name for layer in self.layers)
        return (f"Network(sizes={list(self.sizes)}, activations=[{acts}], loss={self.loss_name!r}, "
                f"layout={self.layout!r}, reduction={self.reduction!r}, weight_decay={self.weight_decay}, "
                f"samples={self.m})")


def _kinds(blocks):
    """The blocks in words: "layer norm, residual(self-attention), dense"."""
    return [f"{b.kind}({', '.join(_kinds(b.inner))})" if b.inner else b.kind for b in blocks]


def generic_size(net, k):
    """The width of layer l + k for symbolic l, named as the network names its sizes: n0, n1, … give n_l;
    n1, n2, … (seed 001) give n_{l+1}; s1, … (Ng) give s_{l+1}; numeric sizes give n_l."""
    named = re.fullmatch(r"([A-Za-z]+)_?(\d+)", str(net.sizes[0]))
    prefix, offset = (named.group(1), int(named.group(2))) if named else ("n", 0)
    index = "l" if k + offset == 0 else f"{{l{k + offset:+d}}}"
    return sp.Symbol(f"{prefix}_{index}", integer=True, positive=True)


def generic_symbols(net, k=0):
    """The symbols of layer l + k for symbolic l (k = 0 or 1), with the activations A(l + k − 1) they take in:
    W, b, Z, A, δ, the input A, and Z's definition."""
    m, AW = net.m, net.layout == "AW"
    tag = "l" if k == 0 else f"l{k:+d}"
    below = "l-1" if k == 0 else ("l" if k == 1 else f"l{k - 1:+d}")
    n, n_in = generic_size(net, k), generic_size(net, k - 1)

    def matrix(name, rows):
        return sp.MatrixSymbol(name, m, rows) if AW else sp.MatrixSymbol(name, rows, m)

    W = sp.MatrixSymbol(f"W({tag})", *weight_shape(net.layout, n_in, n))
    b = sp.MatrixSymbol(f"b({tag})", n, 1) if net.layers[0].b is not None else None
    A_in = matrix(f"A({below})", n_in)
    return {"W": W, "b": b, "Z": matrix(f"Z({tag})", n), "A": matrix(f"A({tag})", n),
            "delta": matrix(f"delta({tag})", n), "A_in": A_in, "Z_def": pre_activation(net.layout, W, A_in, b, m)}


def generic_layer(net):
    """The symbols of a generic layer l of `net` and the one above it: W(l+1), b(l+1), A(l), Z(l), δ(l), δ(l+1),
    Z(l+1) with its definition, and A(l) = σ(Z(l)) with the hidden activation."""
    here, above = generic_symbols(net, 0), generic_symbols(net, 1)
    act = net.layers[0].activation
    return {"W": above["W"], "b": above["b"], "A": here["A"], "Z": here["Z"], "delta": here["delta"],
            "Z_next": above["Z"], "delta_next": above["delta"], "Z_next_def": above["Z_def"],
            "A_def": apply(sp.Lambda(ELT, act.body), here["Z"])}


def mlp(sizes: Sequence[int | str], activation: str | list[str] | tuple[str, ...] = "sigmoid", output: str | None = None,
        loss: str = "half_sse", bias: bool = True, layout: str = "WA", reduction: str = "mean",
        weight_decay: float | str | sp.Basic = 0, samples: int | str | sp.Basic = SAMPLES) -> "Network":
    """The network with layer sizes [n0, n1, …, nL]: `activation` for the hidden layers (one, or one per
    hidden layer), `output` for the last (default: softmax under the softmax cross-entropy loss, else the hidden
    activation)."""
    sizes = list(sizes)
    if output is None and loss == "softmax_ce":   # the cross-entropy of a softmax, as its name says
        output = "softmax"
    if len(sizes) < 2:
        raise InvalidArgument(f"mlp: sizes needs the input size and at least one layer, got {sizes}")
    hidden = len(sizes) - 2
    if isinstance(activation, (list, tuple)):
        if len(activation) != hidden:
            raise InvalidArgument(f"mlp: {len(activation)} activations given for {hidden} hidden layers")
        acts = list(activation)
        output = output if output is not None else (acts[-1] if acts else "sigmoid")
    else:
        acts = [activation] * hidden
        output = activation if output is None else output
    layers = [Dense(n, a, bias) for n, a in zip(sizes[1:], [*acts, output])]
    return Network(sizes[0], layers, loss=loss, layout=layout, reduction=reduction, weight_decay=weight_decay,
                   samples=samples)
