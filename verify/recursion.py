"""The closed-form backprop recursion, written by hand in NumPy (independent of `derive`).

Columns are samples inside this module: Z^(l) = V^(l) A^(l−1) + b^(l) 1ᵀ with V = W (layout "WA")
or V = Wᵀ (layouts "WtA" and "AW"; "AW" stores samples as rows, so its X and Y are transposed first).
Then δ^(L) = ∂L/∂Z^(L) per loss and output, δ^(l) = V^(l+1)ᵀ δ^(l+1) ⊙ σ'(Z^(l)),
∂L/∂V^(l) = δ^(l) A^(l−1)ᵀ (+ λ V^(l)), ∂L/∂b^(l) = δ^(l) 1.
"""
from dataclasses import dataclass

import numpy as np

LEAK = 0.01


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


# name -> (σ(z), σ'(z)) on arrays
ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, LEAK * z), lambda z: np.where(z > 0, 1.0, LEAK).astype(z.dtype)),
    "softplus": (lambda z: np.logaddexp(0.0, z), _sigmoid),
}


def _softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


@dataclass(frozen=True)
class Custom:
    """An activation given as a SymPy Lambda: σ and σ' evaluated by sympy.lambdify (σ' by SymPy's diff)."""

    function: object  # sympy.Lambda of one variable

    def __str__(self):
        return str(self.function.expr)

    def numpy(self):
        """(σ, σ') on arrays."""
        import sympy as sp

        (x,) = self.function.variables
        body = self.function.expr
        pair = []
        for e in (body, sp.diff(body, x)):
            try:
                f = sp.lambdify(x, e, modules="numpy")
                f(np.zeros(1))
            except (NameError, TypeError, AttributeError):
                # a function NumPy's printer does not know (a class with its definition as a rewrite)
                f = sp.lambdify(x, e.rewrite(sp.exp).rewrite(sp.Max).doit(), modules="numpy")
            pair.append(lambda z, f=f: np.broadcast_to(f(z), np.shape(z)).astype(np.result_type(z, np.float32)))
        return tuple(pair)


def activation(act):
    """(σ, σ') on arrays for an activation name or a Custom one."""
    return act.numpy() if isinstance(act, Custom) else ACTIVATIONS[act]


@dataclass(frozen=True)
class Spec:
    """An architecture in plain data: one activation name per layer, loss, layout, reduction, λ, biases."""

    activations: tuple
    loss: str = "half_sse"
    layout: str = "WA"
    reduction: str = "mean"
    weight_decay: float = 0.0
    bias: tuple = None  # one bool per layer; None: every layer has a bias

    @classmethod
    def of(cls, network, weight_decay=None):
        """The Spec of a derive.Network, read off its attributes (duck typing: no import of derive);
        `weight_decay` gives λ's value when the network's λ is a symbol. An activation given as a SymPy function
        is read off the layer's definition A = σ(Z) (its Lambda) as a Custom one."""
        def act(layer):
            known = layer.activation in ACTIVATIONS or layer.activation == "softmax"
            return layer.activation if known else Custom(layer.A_def.function)

        return cls(tuple(act(layer) for layer in network.layers), network.loss_name, network.layout,
                   network.reduction, float(network.weight_decay if weight_decay is None else weight_decay),
                   tuple(layer.b is not None for layer in network.layers))

    def has_bias(self, l):
        return True if self.bias is None else self.bias[l - 1]


def _as_columns(spec, M):
    """M with samples as columns (layout AW stores them as rows)."""
    return M.T if spec.layout == "AW" else M


def _weights(spec, params):
    """[V^(l)], [b^(l)] such that Z^(l) = V^(l) A^(l−1) + b^(l) with samples as columns."""
    L = len(spec.activations)
    V = [params[f"W{l}"] if spec.layout == "WA" else params[f"W{l}"].T for l in range(1, L + 1)]
    b = [params[f"b{l}"] if spec.has_bias(l) else 0.0 for l in range(1, L + 1)]
    return V, b


def forward(spec, X, params):
    """([Z^(1..L)], [A^(0..L)]) with samples as columns."""
    V, b = _weights(spec, params)
    Zs, As = [], [_as_columns(spec, X)]
    for l, act in enumerate(spec.activations):
        Z = V[l] @ As[-1] + b[l]
        Zs.append(Z)
        As.append(_softmax(Z) if act == "softmax" else activation(act)[0](Z))
    return Zs, As


def _per_entry_loss(spec, A, Y):
    """The loss summed over every sample, before reduction."""
    if spec.loss == "half_sse":
        return 0.5 * np.sum((A - Y) ** 2)
    if spec.loss == "mse":
        return np.sum((A - Y) ** 2) / A.shape[0]
    if spec.loss == "bce":
        return -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    if spec.loss == "softmax_ce":
        return -np.sum(Y * np.log(A))
    raise ValueError(f"unknown loss {spec.loss!r}")


def loss(spec, X, Y, params):
    """The scalar loss: reduced data term plus (λ/2) Σ ‖W‖²_F."""
    Zs, As = forward(spec, X, params)
    Ycol = _as_columns(spec, Y)
    m = Ycol.shape[1]
    Z, out = Zs[-1], spec.activations[-1]
    if (spec.loss, out) == ("bce", "sigmoid"):
        # from the logits: −log σ(z) = log(1 + e^{−z}), −log(1 − σ(z)) = log(1 + e^{z})
        data = np.sum(Ycol * np.logaddexp(0.0, -Z) + (1 - Ycol) * np.logaddexp(0.0, Z))
    elif (spec.loss, out) == ("softmax_ce", "softmax"):
        # log softmax(z) = z − max − log Σ e^{z − max}
        shifted = Z - Z.max(axis=0, keepdims=True)
        data = -np.sum(Ycol * (shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))))
    else:
        data = _per_entry_loss(spec, As[-1], Ycol)
    if spec.reduction == "mean":
        data = data / m
    decay = sum(np.sum(params[f"W{l}"] ** 2) for l in range(1, len(spec.activations) + 1))
    return data + spec.weight_decay / 2 * decay


def _output_delta(spec, Z, A, Y):
    """δ^(L) before reduction: the textbook closed forms, or ∂L/∂A ⊙ σ'(Z) (softmax: its Jacobian)."""
    out = spec.activations[-1]
    if (spec.loss, out) == ("bce", "sigmoid"):
        return A - Y  # σ' cancels
    if (spec.loss, out) == ("softmax_ce", "softmax"):
        return A * Y.sum(axis=0, keepdims=True) - Y  # the softmax Jacobian cancels: a (1ᵀy) − y, a − y for one-hot y
    if spec.loss == "half_sse":
        g = A - Y
    elif spec.loss == "mse":
        g = 2 * (A - Y) / A.shape[0]
    elif spec.loss == "bce":
        g = (A - Y) / (A * (1 - A))
    else:
        g = -Y / A
    if out == "softmax":
        # J_softmax(z)ᵀ g = s ⊙ (g − 1ᵀ(s ⊙ g)) per column
        return A * (g - np.sum(A * g, axis=0, keepdims=True))
    return g * activation(out)[1](Z)


def gradients(spec, X, Y, params):
    """{"W1": ∂L/∂W1, "b1": ∂L/∂b1, ...} in the layout's own shapes, by the closed-form recursion."""
    Yc, (V, _) = _as_columns(spec, Y), _weights(spec, params)
    Zs, As = forward(spec, X, params)
    m, L = Yc.shape[1], len(spec.activations)
    scale = 1.0 / m if spec.reduction == "mean" else 1.0
    delta = scale * _output_delta(spec, Zs[-1], As[-1], Yc)
    grads = {}
    for l in range(L, 0, -1):
        dV = delta @ As[l - 1].T
        # W = V in layout WA; W = Vᵀ otherwise
        grads[f"W{l}"] = (dV if spec.layout == "WA" else dV.T) + spec.weight_decay * params[f"W{l}"]
        if spec.has_bias(l):
            grads[f"b{l}"] = delta.sum(axis=1, keepdims=True)
        if l > 1:
            delta = (V[l - 1].T @ delta) * activation(spec.activations[l - 2])[1](Zs[l - 2])
    order = [k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}") if k in grads]
    return {k: grads[k] for k in order}
