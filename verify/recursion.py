"""The closed-form backprop recursion, written by hand in NumPy (independent of `derive`).

Columns are samples inside this module: Z^(l) = V^(l) A^(l−1) + b^(l) 1ᵀ with V = W (layout "WA")
or V = Wᵀ (layouts "WtA" and "AW"; "AW" stores samples as rows, so its X and Y are transposed first).
Then δ^(L) = ∂L/∂Z^(L) per loss and output, δ^(l) = V^(l+1)ᵀ δ^(l+1) ⊙ σ'(Z^(l)),
∂L/∂V^(l) = δ^(l) A^(l−1)ᵀ (+ λ V^(l)), ∂L/∂b^(l) = δ^(l) 1.
"""
from dataclasses import dataclass, replace

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


def _lambdified(x, e):
    """e as a NumPy function of the symbols x; functions NumPy's printer does not know (a class that carries its
    definition as a rewrite) are rewritten into exp and Max first."""
    import sympy as sp

    try:
        f = sp.lambdify(x, e, modules="numpy")
        f(*[np.full(1, 0.5)] * len(x))
        return f
    except (NameError, TypeError, AttributeError):
        return sp.lambdify(x, e.rewrite(sp.exp).rewrite(sp.Max).doit(), modules="numpy")


def _derivative(body, x):
    """d body/dx by SymPy's scalar diff, x real (|x|' = sign x), the steps' derivatives (DiracDelta) 0 almost
    everywhere."""
    import sympy as sp

    real = sp.Symbol(f"{x}_real", real=True)
    out = sp.diff(body.xreplace({x: real}), real).xreplace({real: x})
    return out.replace(sp.DiracDelta, lambda *args: sp.S.Zero)


def _float(z):
    return np.result_type(z, np.float32)


@dataclass(frozen=True)
class Custom:
    """An activation given as a SymPy Lambda: σ and σ' evaluated by sympy.lambdify (σ' by SymPy's scalar diff)."""

    function: object  # sympy.Lambda of one variable
    name: str = ""

    def __str__(self):
        return self.name or str(self.function.expr)

    def numpy(self):
        """(σ, σ') on arrays."""
        (x,) = self.function.variables
        body = self.function.expr
        return tuple((lambda z, f=_lambdified((x,), e): np.broadcast_to(f(z), np.shape(z)).astype(_float(z)))
                     for e in (body, _derivative(body, x)))


@dataclass(frozen=True)
class CustomLoss:
    """A loss given by ℓ(a, y) of one output entry as a SymPy Lambda: ℓ and ∂ℓ/∂a by sympy.lambdify and SymPy's
    scalar diff; summed over every entry (and divided by the number of outputs when per_output)."""

    function: object  # sympy.Lambda of (a, y)
    name: str = ""
    per_output: bool = False

    def __str__(self):
        return self.name or str(self.function.expr)

    def numpy(self):
        """(ℓ(A, Y), ∂ℓ/∂a(A, Y)) on arrays, entry by entry."""
        a, y = self.function.variables
        body = self.function.expr
        return tuple((lambda A, Y, f=_lambdified((a, y), e): np.broadcast_to(f(A, Y), np.shape(A)).astype(_float(A)))
                     for e in (body, _derivative(body, a)))


def activation(act):
    """(σ, σ') on arrays for an activation name or a Custom one."""
    return act.numpy() if isinstance(act, Custom) else ACTIVATIONS[act]


@dataclass(frozen=True)
class Spec:
    """An architecture in plain data: per layer an activation (a name this module knows, or Custom), the loss (a
    name or CustomLoss), layout, reduction, λ, biases, and the sizes n0 … nL and samples m (ints or SymPy symbols)."""

    activations: tuple
    loss: object = "half_sse"
    layout: str = "WA"
    reduction: str = "mean"
    weight_decay: float = 0.0
    bias: tuple | None = None  # one bool per layer; None: every layer has a bias
    sizes: tuple | None = None
    samples: object = None
    decay: object = None  # λ as given (a SymPy number or symbol), for the exact proof

    @classmethod
    def of(cls, source, weight_decay=None):
        """The Spec of a plain specification: a dict with sizes, samples, layout, reduction, weight_decay, layers
        [{activation, bias, function}] and loss {name, function, per_output}, or an object whose specification()
        returns one (a derive Network or its backprop). A name this module does not know is taken from its
        `function` (a SymPy Lambda, or a Python function of SymPy scalars); `weight_decay` is the value of the
        symbols of a symbolic λ (2λ with λ = 0.1 is 0.2). Anything missing or invalid is a ValueError naming it."""
        if isinstance(source, Spec):
            return source if weight_decay is None else replace(source, weight_decay=_decay(source.decay,
                                                                                          weight_decay))
        if hasattr(source, "specification"):
            source = source.specification()
        if not isinstance(source, dict):
            raise ValueError(f"verify: a specification is a dict (or has specification()), got {type(source).__name__}")
        source = source.get("network", source)
        if "blocks" in source and "layers" not in source:
            source = _chain(source)
        missing = [k for k in ("sizes", "layers", "loss") if k not in source]
        if missing:
            raise ValueError(f"verify: the specification has no blocks (or no {', '.join(missing)} in the format "
                             f"{{sizes, layers, loss}})")
        layers, sizes = source["layers"], tuple(_size(n) for n in source["sizes"])
        if len(sizes) != len(layers) + 1:
            raise ValueError(f"verify: {len(sizes)} sizes for {len(layers)} layers (n0, n1, …, nL: one more)")
        layout, reduction = source.get("layout", "WA"), source.get("reduction", "mean")
        if layout not in ("WA", "WtA", "AW") or reduction not in ("mean", "sum"):
            raise ValueError(f"verify: layout {layout!r} (WA, WtA, AW) or reduction {reduction!r} (mean, sum) unknown")
        decay = source.get("weight_decay", 0)
        return cls(tuple(_activation(layer, l) for l, layer in enumerate(layers, 1)), _loss(source["loss"]),
                   layout, reduction, _decay(decay, weight_decay), tuple(layer.get("bias", True) for layer in layers),
                   sizes, _size(source.get("samples", 1)), decay)

    def has_bias(self, l):
        return True if self.bias is None else self.bias[l - 1]


def dense_chain(spec):
    """Whether a block specification is a chain of plain dense layers (untied): the recursion's networks."""
    return all(b["kind"] == "dense" and not b.get("tie") for b in spec["blocks"])


def _chain(spec):
    """The specification {sizes, layers, …} of a block specification whose blocks are plain dense layers."""
    if not dense_chain(spec):
        kinds = ", ".join(dict.fromkeys(b["kind"] + (" (tied)" if b.get("tie") else "") for b in spec["blocks"]))
        raise ValueError(f"verify: the recursion is for chains of untied dense layers; this network has {kinds} "
                         f"(verify.check uses the block reference for it)")
    blocks = spec["blocks"]
    return {**spec, "sizes": [spec["inputs"], *(b["units"] for b in blocks)],
            "layers": [{"activation": b["activation"], "bias": b["bias"], "function": b.get("function")}
                       for b in blocks]}


def _size(n):
    """A size: a positive int, or a SymPy symbol (a name is made one)."""
    import sympy as sp

    if isinstance(n, str) and n.isidentifier():
        return sp.Symbol(n, integer=True, positive=True)
    if isinstance(n, sp.Symbol) or (isinstance(n, (int, sp.Integer)) and not isinstance(n, bool) and n > 0):
        return n
    raise ValueError(f"verify: size {n!r} is neither a positive integer nor a name")


def _decay(decay, value):
    """λ as a number: `decay` itself, or with `value` for each of its symbols; a ValueError when it stays symbolic
    or is negative."""
    import sympy as sp

    decay = sp.sympify(decay, strict=True)
    if decay.free_symbols:
        if value is None:
            raise ValueError(f"verify: weight decay {decay} is symbolic; give its symbols' value (weight_decay=…)")
        decay = decay.xreplace({s: sp.Float(value) for s in decay.free_symbols})
    number = float(decay)
    if not number >= 0:
        raise ValueError(f"verify: weight decay {number} is negative (or not a number)")
    return number


def _lambda(function, arity, what):
    """function as a SymPy Lambda of `arity` real variables (a Python function of SymPy scalars is applied to them)."""
    import sympy as sp

    if isinstance(function, sp.Lambda):
        return function
    if callable(function):
        xs = sp.symbols("x0:%d" % arity, real=True)
        return sp.Lambda(xs if arity > 1 else xs[0], function(*xs))
    raise ValueError(f"verify: {what}: its function must be a SymPy Lambda or a Python function, got {function!r}")


def _activation(layer, l):
    if "activation" not in layer:
        raise ValueError(f"verify: layer {l} has no activation")
    name, function = layer["activation"], layer.get("function")
    if name in ACTIVATIONS or name == "softmax":
        return name
    if function is None:
        raise ValueError(f"verify: activation {name!r} is not one this module writes out, and no SymPy function "
                         f"was given for it")
    return Custom(_lambda(function, 1, f"activation {name!r}"), name)


def _loss(loss):
    loss = {"name": loss} if isinstance(loss, str) else loss
    if not isinstance(loss, dict) or "name" not in loss:
        raise ValueError(f"verify: the loss is a name or a dict with a name, got {loss!r}")
    if loss["name"] in WRITTEN:
        return loss["name"]
    if loss.get("function") is None:
        raise ValueError(f"verify: loss {loss['name']!r} is not one this module writes out, and no SymPy function "
                         f"ℓ(a, y) was given for it")
    return CustomLoss(_lambda(loss["function"], 2, f"loss {loss['name']!r}"), loss["name"],
                      loss.get("per_output", False))


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


# name -> (ℓ summed over every entry, ∂/∂A), samples as columns, before the reduction
WRITTEN = {
    "half_sse": (lambda A, Y: 0.5 * np.sum((A - Y) ** 2), lambda A, Y: A - Y),
    "sse": (lambda A, Y: np.sum((A - Y) ** 2), lambda A, Y: 2 * (A - Y)),
    "mse": (lambda A, Y: np.sum((A - Y) ** 2) / A.shape[0], lambda A, Y: 2 * (A - Y) / A.shape[0]),
    "bce": (lambda A, Y: -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)), lambda A, Y: (A - Y) / (A * (1 - A))),
    "softmax_ce": (lambda A, Y: -np.sum(Y * np.log(A)), lambda A, Y: -Y / A),
}


def data_loss(loss, A, Y):
    """(the loss summed over every sample, ∂ of it by A) before the reduction, samples as columns: the formulas above
    for the names this module writes out, else ℓ(a, y) and ∂ℓ/∂a of a CustomLoss (÷ n outputs when per_output)."""
    if isinstance(loss, str):
        value, grad = WRITTEN[loss]
        return value(A, Y), grad(A, Y)
    value, grad = loss.numpy()
    n = A.shape[0] if loss.per_output else 1
    return np.sum(value(A, Y)) / n, grad(A, Y) / n


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
        data = data_loss(spec.loss, As[-1], Ycol)[0]
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
    g = data_loss(spec.loss, A, Y)[1]
    if out == "softmax":
        # J_softmax(z)ᵀ g = s ⊙ (g − 1ᵀ(s ⊙ g)) per column
        return A * (g - np.sum(A * g, axis=0, keepdims=True))
    return g * activation(out)[1](Z)


def gradients(spec, X, Y, params):
    """{"W1": ∂L/∂W1, "b1": ∂L/∂b1, ...} in the layout's own shapes, by the closed-form recursion."""
    Zs, As = forward(spec, X, params)
    grads = backward(spec, Zs, As, params, output_delta(spec, Zs[-1], Y))
    for l in range(1, len(spec.activations) + 1):
        grads[f"W{l}"] = grads[f"W{l}"] + spec.weight_decay * params[f"W{l}"]
    return grads


def output_delta(spec, Z, Y):
    """δ^(L) = ∂L/∂Z^(L) (reduced, without the weight decay) as a function of the output Z^(L)."""
    Yc = _as_columns(spec, Y)
    out = spec.activations[-1]
    A = _softmax(Z) if out == "softmax" else activation(out)[0](Z)
    scale = 1.0 / Yc.shape[1] if spec.reduction == "mean" else 1.0
    return scale * _output_delta(spec, Z, A, Yc)


def backward(spec, Zs, As, params, delta, deltas=None):
    """{"W1": …, "b1": …}: the δ recursion from δ^(L) = delta down, without the weight decay (Jᵀ delta, J the
    Jacobian of Z^(L) by the parameters); `deltas`, a dict, receives every δ^(l) by l."""
    V, _ = _weights(spec, params)
    L = len(spec.activations)
    grads = {}
    for l in range(L, 0, -1):
        if deltas is not None:
            deltas[l] = delta
        dV = delta @ As[l - 1].T
        # W = V in layout WA; W = Vᵀ otherwise
        grads[f"W{l}"] = dV if spec.layout == "WA" else dV.T
        if spec.has_bias(l):
            grads[f"b{l}"] = delta.sum(axis=1, keepdims=True)
        if l > 1:
            delta = (V[l - 1].T @ delta) * activation(spec.activations[l - 2])[1](Zs[l - 2])
    order = [k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}") if k in grads]
    return {k: grads[k] for k in order}
