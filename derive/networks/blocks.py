"""The blocks a network is made of, and how each is built into named definitions: dense layers, residual connections,
layer norm, self-attention, 1-D convolution and recurrent (Elman) layers. Every block reads the matrix before it and
defines its output; its parameters are named by role and by its position l among the parameterised layers."""
import math
from dataclasses import dataclass, replace

import sympy as sp

from ..core import registry
from ..core.expr import Select, hadamard, hadamard_power, matadd, matmul, tp
from ..core.functions import ELT, Softmax, apply, body_of
from ..core.registry import ACTIVATIONS, Activation
from ..errors import InvalidArgument


@dataclass(frozen=True)
class Dense:
    """A dense layer: `units` outputs (a positive int or a SymPy symbol), an activation, a bias or not; `tie` names
    an earlier weight ("W1") whose transpose this layer uses (a tied autoencoder): the weight is shared.

    `activation` is a registered name (derive.ACTIVATIONS), or any differentiable SymPy function class or Lambda.
    """

    units: object
    activation: object = "sigmoid"
    bias: bool = True
    tie: object = None


@dataclass(frozen=True)
class Residual:
    """y = x + F(x): the blocks F, whose output must have the width of x."""

    layers: tuple

    def __init__(self, layers):
        object.__setattr__(self, "layers", tuple(layers))


@dataclass(frozen=True)
class LayerNorm:
    """γ ⊙ (z − μ)/√(σ² + ε) + β per sample over its features (μ, σ² the sample's mean and variance)."""

    eps: object = 1e-5


@dataclass(frozen=True)
class SelfAttention:
    """Scaled dot-product self-attention over the samples axis (the tokens of one sequence): Q = X W_q, K = X W_k,
    V = X W_v, per head P_h = softmax(Q_h K_hᵀ/√d_k) per query (causal: each token sees those before it and
    itself), output concat_h(P_h V_h) W_o; heads are column blocks of width d_k; no biases."""

    d_k: int
    heads: int = 1
    causal: bool = False


@dataclass(frozen=True)
class Conv1D:
    """A 1-D convolution over the samples (time) axis: Z[t] = Σ_j X[t·stride + j − padding] K_j + bᵀ, K_j rows
    j·c_in … (j + 1)·c_in − 1 of K, written Z = Σ_j S_j X E_j K + 1 bᵀ with constant shift S_j and tap E_j."""

    channels: int
    width: int
    stride: int = 1
    padding: int = 0
    activation: object = "identity"


@dataclass(frozen=True)
class Recurrent:
    """An Elman layer H_t = f(W_h H_{t−1} + W_x X_t + b 1ᵀ), H_0 = 0, unrolled over `steps` with shared weights; it
    reads the sequence X1 … XT (so it comes first) and passes H_T on."""

    hidden: object
    steps: int
    activation: object = "tanh"


BLOCKS = (Dense, Residual, LayerNorm, SelfAttention, Conv1D, Recurrent)
MAX_NESTING = 100   # residuals inside residuals: each is a level of recursion in building and printing


@dataclass(frozen=True)
class Layer:
    """A dense layer l of a built network: its symbols and the definitions of Z^(l) and A^(l)."""

    index: int
    activation: Activation
    W: sp.MatrixSymbol
    b: object  # MatrixSymbol, or None without bias
    Z: sp.MatrixSymbol
    A: sp.MatrixSymbol
    delta: sp.MatrixSymbol
    Z_def: sp.Basic
    A_def: sp.Basic


@dataclass(frozen=True)
class Output:
    """A = σ(Z) that ends a convolution or recurrent layer, with δ = ∂L/∂Z: what the loss and its chain read of the
    network's output (a dense layer's Layer has the same fields)."""

    activation: Activation
    Z: sp.MatrixSymbol
    A: sp.MatrixSymbol
    A_def: sp.Basic
    delta: sp.MatrixSymbol


@dataclass(frozen=True)
class Built:
    """One block of a built network: what it is, the matrix it reads and the one it defines, its definitions in
    forward order, its parameters, and the δ named at its intermediates ({Z: δ_Z})."""

    kind: str
    index: int
    title: str
    input: sp.MatrixSymbol
    output: sp.MatrixSymbol
    definitions: tuple
    parameters: tuple
    deltas: tuple
    inner: tuple = ()      # the blocks of a residual
    layer: object = None   # the Layer of a dense block
    note: str = ""
    spec: object = None    # the block as given
    meanings: tuple = ()   # (Z, what it is in words) for the intermediates it names
    activated: object = None   # the Layer or Output A = σ(Z) the block ends with (dense, convolution, recurrent)

    def plain(self):
        """The block as plain data, for a verification written apart from derive: its kind, its position l, what it
        was given (activations by name, with σ as a SymPy Lambda)."""
        s = self.spec
        out = {"kind": self.kind, "index": self.index}
        if self.kind == "residual":
            return {**out, "layers": [b.plain() for b in self.inner]}
        if self.kind == "dense":
            out.update(units=s.units, bias=s.bias, tie=s.tie)
        elif self.kind == "layer norm":
            out.update(eps=float(s.eps))
        elif self.kind == "self-attention":
            out.update(d_k=int(s.d_k), heads=int(s.heads), causal=bool(s.causal))
        elif self.kind == "convolution":
            out.update(channels=int(s.channels), width=int(s.width), stride=int(s.stride), padding=int(s.padding))
        elif self.kind == "recurrent":
            out.update(hidden=s.hidden, steps=int(s.steps))
        if hasattr(s, "activation"):
            act = activation_of(s.activation, self.title)
            out.update(activation=act.name, function=act.definition() if act.elementwise else None)
        return out


def size(n, where):
    """n as a SymPy size: a positive integer or a symbol; anything else is a ValueError naming `where`."""
    if isinstance(n, str) and n.isidentifier():
        return sp.Symbol(n, integer=True, positive=True)
    if isinstance(n, sp.Symbol) and n.is_positive is not False:
        return n
    if isinstance(n, (int, sp.Integer)) and not isinstance(n, bool) and n > 0:
        return sp.Integer(n)
    raise InvalidArgument(f"{where}: size must be a positive integer or a SymPy symbol, got {n!r}")


def _count(n, what, where, least=1):
    """A plain integer ≥ `least` (a count a block's structure depends on)."""
    if isinstance(n, bool) or not isinstance(n, (int, sp.Integer)) or n < least:
        raise InvalidArgument(f"{where}: {what} must be an integer ≥ {least}, got {n!r}")
    return int(n)


def activation_of(spec, where):
    """The Activation given by a registered name, a SymPy function class or a Lambda (unregistered, named by its
    body)."""
    if isinstance(spec, str):
        try:
            return registry.activation(spec)
        except InvalidArgument as e:
            raise InvalidArgument(f"{where}: {e}") from None
    if isinstance(spec, sp.Lambda) or (isinstance(spec, type) and issubclass(spec, sp.Function)):
        body = body_of(spec)
        return Activation(str(body.xreplace({ELT: sp.Symbol("x")})), sp.Lambda(ELT, body))
    raise InvalidArgument(f"{where}: activation must be a name ({', '.join(ACTIVATIONS)}) or a SymPy function, "
                          f"got {spec!r}")


def pre_activation(layout, W, A_in, b, m):
    """Z = W A + b 1ᵀ (WA), Wᵀ A + b 1ᵀ (WtA) or A W + 1 bᵀ (AW); without the bias term when b is None."""
    return matadd(linear(layout, W, A_in), *([bias(layout, b, m)] if b is not None else []))


def linear(layout, W, A):
    """W A (WA), Wᵀ A (WtA), A W (AW): the features of A mapped by W."""
    return matmul(W, A) if layout == "WA" else matmul(tp(W), A) if layout == "WtA" else matmul(A, W)


def bias(layout, b, m):
    """b 1ᵀ (samples as columns) or 1 bᵀ (AW): the column b for every sample."""
    return matmul(b, sp.OneMatrix(1, m)) if layout != "AW" else matmul(sp.OneMatrix(m, 1), tp(b))


def weight_shape(layout, n_in, n_out):
    """The shape of a weight that maps n_in features to n_out: n_out × n_in in WA, n_in × n_out otherwise."""
    return (n_out, n_in) if layout == "WA" else (n_in, n_out)


def activate(act, Z, layout):
    """σ(Z) entrywise, or softmax per sample."""
    if not act.elementwise:
        return Softmax(Z, 1 if layout == "AW" else 0)
    return apply(sp.Lambda(ELT, act.body), Z)


class Builder:
    """Builds blocks one after another: the current matrix, its width and number of samples, and the counters."""

    def __init__(self, layout, samples, inputs):
        self.layout, self.m, self.n = layout, samples, inputs
        self.l, self.residuals, self.blocks, self.first = 0, 0, [], True
        self.nesting = 0       # the residuals being built, one inside the other
        self.parameters = {}   # name -> MatrixSymbol
        self.constants = {}    # a block's constant as a symbol (ε of a layer norm) -> its value, for code
        self.inputs = None

    def matrix(self, name, features, samples=None):
        """A matrix of `features` per sample: samples × features in layout AW, features × samples otherwise."""
        m = self.m if samples is None else samples
        return sp.MatrixSymbol(name, m, features) if self.layout == "AW" else sp.MatrixSymbol(name, features, m)

    def parameter(self, name, shape):
        P = sp.MatrixSymbol(name, *shape)
        self.parameters[name] = P
        return P

    def build(self, specs, A, last):
        """Build `specs` in turn from A; the Built blocks and the output."""
        built = []
        for k, spec in enumerate(specs):
            if not isinstance(spec, BLOCKS):
                raise InvalidArgument(f"layer {self.l + 1}: {spec!r} is not a block; blocks are "
                                      f"{', '.join(b.__name__ for b in BLOCKS)}")
            block = getattr(self, type(spec).__name__.lower())(spec, A, last and k == len(specs) - 1)
            block = replace(block, spec=spec)
            self.first = False
            built.append(block)
            A = block.output
        return built, A

    def _next(self, what):
        self.l += 1
        return self.l, f"layer {self.l}" if what == "dense" else f"layer {self.l} ({what})"

    def dense(self, spec, A, last):
        l, where = self._next("dense")
        act = activation_of(spec.activation, where)
        if not act.elementwise and not last:
            raise InvalidArgument(f"{where}: softmax is only valid on the output layer (the network's last)")
        n_in, n = self.n, size(spec.units, where)
        if not act.elementwise and n == 1:
            raise InvalidArgument(f"{where}: softmax over a single unit is the constant 1; use sigmoid")
        if spec.tie is not None:
            W = self._tied(spec.tie, weight_shape(self.layout, n_in, n), where)
        else:
            W = self.parameter(f"W{l}", weight_shape(self.layout, n_in, n))
        b = self.parameter(f"b{l}", (n, 1)) if spec.bias else None
        Z, A_out, delta = (self.matrix(f"{k}{l}", n) for k in ("Z", "A", "delta"))
        Z_def = pre_activation(self.layout, W, A, b, self.m)
        A_def = activate(act, Z, self.layout)
        layer = Layer(l, act, W, b, Z, A_out, delta, Z_def, A_def)
        self.n = n
        note = f"the weight is {spec.tie}ᵀ, shared with {spec.tie}: its gradient sums both uses" if spec.tie else ""
        params = tuple(P for P in (W if spec.tie is None else None, b) if P is not None)
        return Built("dense", l, f"Layer {l}: dense, {act.name}", A, A_out, ((Z, Z_def), (A_out, A_def)), params,
                     ((Z, delta),), layer=layer, note=note, activated=layer,
                     meanings=((Z, f"the pre-activations of layer {l}"), (A_out, f"the activations of layer {l}")))

    def _tied(self, name, shape, where):
        if not isinstance(name, str) or name not in self.parameters or not name.startswith("W"):
            known = ", ".join(k for k in self.parameters if k.startswith("W")) or "none yet"
            raise InvalidArgument(f"{where}: tie={name!r} names no earlier dense weight (the weights so far: {known})")
        W = self.parameters[name]
        if tuple(W.T.shape) != tuple(shape):
            raise InvalidArgument(f"{where}: tie={name!r}: this layer needs a weight of shape "
                                  f"{tuple(shape)}, and {name}ᵀ has shape {tuple(W.T.shape)}")
        return tp(W)

    def residual(self, spec, A, last):
        self.residuals += 1
        k = self.residuals
        if not spec.layers:
            raise InvalidArgument(f"residual {k}: needs at least one layer")
        if self.nesting == MAX_NESTING:
            raise InvalidArgument(f"residual {k}: residuals nest at most {MAX_NESTING} deep")
        n, m, first = self.n, self.m, self.l + 1
        self.nesting += 1
        inner, F = self.build(spec.layers, A, last)
        self.nesting -= 1
        where = f"residual {k} (layers {first}–{self.l})"
        if (self.n, self.m) != (n, m):
            raise InvalidArgument(f"{where}: x + F(x) needs F(x) of the shape of x: x has width {n} and {m} "
                                  f"samples, F(x) width {self.n} and {self.m} samples")
        R, delta = self.matrix(f"R{k}", n), self.matrix(f"delta_R{k}", n)
        span = f"layers {first}–{self.l}" if self.l > first else f"layer {first}"
        return Built("residual", k, f"Residual {k}: x + F(x) over {span}", A, R,
                     ((R, matadd(A, F)),), (), ((R, delta),), inner=tuple(inner),
                     meanings=((R, f"the residual sum x + F(x) over {span}"),))

    def layernorm(self, spec, A, last):
        l, where = self._next("layer norm")
        eps = sp.Symbol(f"epsilon{l}", positive=True)
        self.constants[eps] = _epsilon(spec.eps, where)
        n, m, AW = self.n, self.m, self.layout == "AW"
        one = sp.OneMatrix
        per_sample = (lambda M: matmul(M, one(n, 1))) if AW else (lambda M: matmul(one(1, n), M))
        spread = (lambda s: matmul(s, one(1, n))) if AW else (lambda s: matmul(one(n, 1), s))
        stat = (lambda name: sp.MatrixSymbol(name, m, 1)) if AW else (lambda name: sp.MatrixSymbol(name, 1, m))
        gamma, beta = self.parameter(f"gamma{l}", (n, 1)), self.parameter(f"beta{l}", (n, 1))
        mu, v, s = stat(f"mu{l}"), stat(f"v{l}"), stat(f"s{l}")
        C, N, A_out = (self.matrix(f"{k}{l}", n) for k in ("C", "N", "A"))
        # μ = (1/n) Z 1, C = Z − μ 1ᵀ, v = (1/n) C^∘2 1, s = (v + ε)^∘(−1/2), N = C ⊙ s 1ᵀ, A = N ⊙ 1 γᵀ + 1 βᵀ
        definitions = ((mu, per_sample(A) / n), (C, matadd(A, -spread(mu))),
                       (v, per_sample(hadamard_power(C, 2)) / n),
                       (s, hadamard_power(matadd(v, eps * one(*v.shape)), sp.Rational(-1, 2))),
                       (N, hadamard(C, spread(s))),
                       (A_out, matadd(hadamard(N, bias(self.layout, gamma, m)), bias(self.layout, beta, m))))
        meanings = ((mu, "the mean of each sample's features"), (C, "the centred features"),
                    (v, "the variance of each sample's features"), (s, "one over the standard deviation, per sample"),
                    (N, "the normalised features"), (A_out, f"the output of layer {l}"))
        return Built("layer norm", l, f"Layer {l}: layer norm", A, A_out, definitions, (gamma, beta),
                     _deltas(definitions), meanings=meanings)

    def selfattention(self, spec, A, last):
        l, where = self._next("self-attention")
        dk, heads = _count(spec.d_k, "d_k", where), _count(spec.heads, "heads", where)
        n, m, AW = self.n, self.m, self.layout == "AW"
        if spec.causal and m == 1:
            raise InvalidArgument(f"{where}: a causal mask needs a token axis; this network has one sample (m = 1)")
        width = heads * dk
        Wq, Wk, Wv = (self.parameter(f"W{k}{l}", weight_shape(self.layout, n, width)) for k in "qkv")
        Wo = self.parameter(f"Wo{l}", weight_shape(self.layout, width, n))
        Q, K, V, O, A_out = (self.matrix(f"{k}{l}", w) for k, w in (("Q", width), ("K", width), ("V", width),
                                                                    ("O", width), ("A", n)))
        definitions = [(Q, linear(self.layout, Wq, A)), (K, linear(self.layout, Wk, A)),
                       (V, linear(self.layout, Wv, A))]
        meanings = {Q: f"the queries of layer {l}, the heads side by side", K: f"the keys of layer {l}",
                    V: f"the values of layer {l}", O: f"the heads' outputs side by side (layer {l})",
                    A_out: f"the output of layer {l}"}
        parts = []
        for h in range(1, heads + 1):
            tag = f"{l}_{h}" if heads > 1 else f"{l}"
            S, P = sp.MatrixSymbol(f"S{tag}", m, m), sp.MatrixSymbol(f"P{tag}", m, m)
            head = f", head {h}" if heads > 1 else ""
            if heads > 1:
                # head h: the columns h·d_k … of Q, K, V, taken by E_h: Q_h = Q E_hᵀ (rows E_h Q with samples as
                # columns); its output put back in place: P_h V_h E_h
                E = Select(f"E{l}_{h}", width, (h - 1) * dk, dk)
                meanings[E] = (f"selects columns {(h - 1) * dk + 1}–{h * dk}: head {h}'s block of Q, K, V "
                               f"(rows with samples as columns)")
                Qh, Kh, Vh = (self.matrix(f"{k}{tag}", dk) for k in "QKV")
                definitions += [(Mh, matmul(M, tp(E)) if AW else matmul(E, M)) for Mh, M in ((Qh, Q), (Kh, K), (Vh, V))]
                meanings.update({Qh: f"the queries of head {h} (layer {l})", Kh: f"the keys of head {h}",
                                 Vh: f"the values of head {h}"})
            else:
                E, Qh, Kh, Vh = None, Q, K, V
            # S = Q_h K_hᵀ/√d_k (Kᵀ_h Q_h with samples as columns), P = softmax per query, P V_h
            scores = matmul(Qh, tp(Kh)) if AW else matmul(tp(Kh), Qh)
            out = matmul(P, Vh) if AW else matmul(Vh, P)
            if E is not None:
                out = matmul(out, E) if AW else matmul(tp(E), out)
            definitions += [(S, scores / sp.sqrt(dk)), (P, Softmax(S, 1 if AW else 0, spec.causal))]
            meanings.update({S: f"the attention scores of layer {l}{head}",
                             P: f"the attention weights of layer {l}{head}: each query's weights sum to 1"})
            parts.append(out)
        definitions += [(O, matadd(*parts)), (A_out, linear(self.layout, Wo, O))]
        title = f"Layer {l}: {'causal ' if spec.causal else ''}self-attention, {heads} head{'s' * (heads > 1)}"
        return Built("self-attention", l, title, A, A_out, tuple(definitions), (Wq, Wk, Wv, Wo),
                     _deltas(definitions), meanings=tuple(meanings.items()))

    def conv1d(self, spec, A, last):
        l, where = self._next("convolution")
        channels, width = _count(spec.channels, "channels", where), _count(spec.width, "width", where)
        stride, padding = _count(spec.stride, "stride", where), _count(spec.padding, "padding", where, 0)
        act = activation_of(spec.activation, where)
        if not act.elementwise:
            raise InvalidArgument(f"{where}: softmax is an output activation; a convolution takes an entrywise one")
        if not isinstance(self.m, sp.Integer):
            raise InvalidArgument(f"{where}: a convolution over the samples (time) axis needs their number: pass "
                                  f"samples=<int> (got {self.m})")
        if not isinstance(self.n, sp.Integer):
            raise InvalidArgument(f"{where}: a convolution needs the number of input channels as an integer, "
                                  f"got {self.n}")
        T, c_in = int(self.m), int(self.n)
        T_out = (T + 2 * padding - width) // stride + 1
        if T_out < 1:
            raise InvalidArgument(f"{where}: width {width} is longer than the {T} time steps plus padding "
                                  f"{padding} on each side")
        AW, WA = self.layout == "AW", self.layout == "WA"
        K = self.parameter(f"K{l}", (width * c_in, channels) if not WA else (channels, width * c_in))
        b = self.parameter(f"b{l}", (channels, 1))
        definitions, terms, meanings = [], [], {}
        for j in range(width):
            # tap j: K_j = E_j K, rows j·c_in … of K (columns in WA); S_j selects the time steps t·stride + j − padding
            S, E = Select(f"S{l}_{j}", T, j - padding, T_out, stride), Select(f"E{l}_{j}", width * c_in, j * c_in, c_in)
            Kj = sp.MatrixSymbol(f"K{l}_{j}", c_in, channels) if not WA else sp.MatrixSymbol(f"K{l}_{j}", channels, c_in)
            definitions.append((Kj, matmul(K, tp(E)) if WA else matmul(E, K)))
            meanings[Kj] = f"tap {j} of the kernel of layer {l}"
            meanings[E] = f"selects rows {j * c_in + 1}–{(j + 1) * c_in} of the kernel: tap {j}"
            meanings[S] = (f"selects the time steps t·{stride} + {j - padding} of the input for output step t "
                           f"(a zero row past either end: padding)" if stride > 1 else
                           f"selects the time steps t + {j - padding} of the input for output step t"
                           + (" (a zero row past either end: padding)" if padding else ""))
            terms.append(matmul(S, A, Kj) if AW else matmul(Kj, A, tp(S)) if WA else matmul(tp(Kj), A, tp(S)))
        self.m, self.n = sp.Integer(T_out), sp.Integer(channels)
        Z, A_out = self.matrix(f"Z{l}", channels), self.matrix(f"A{l}", channels)
        z_def = matadd(*terms, bias(self.layout, b, self.m))
        if act.body == ELT:
            definitions.append((A_out, z_def))
            delta = self.matrix(f"delta_A{l}", channels)
            meanings[A_out] = f"the output of layer {l}: Z = Σ_j S_j X K_j + 1 bᵀ"
            named, activated = A_out, None
        else:
            definitions += [(Z, z_def), (A_out, activate(act, Z, self.layout))]
            delta = self.matrix(f"delta{l}", channels)
            meanings.update({Z: f"the pre-activations of layer {l}", A_out: f"the output of layer {l}"})
            named, activated = Z, Output(act, Z, A_out, definitions[-1][1], delta)
        title = f"Layer {l}: convolution, {channels} channels, width {width}" + (
            f", stride {stride}" if stride > 1 else "") + (f", padding {padding}" if padding else "")
        deltas = (*_deltas(definitions[:width]), (named, delta))
        return Built("convolution", l, title, A, A_out, tuple(definitions), (K, b), deltas,
                     meanings=tuple(meanings.items()), activated=activated)

    def recurrent(self, spec, A, last):
        l, where = self._next("recurrent")
        if not self.first:
            raise InvalidArgument(f"{where}: a recurrent layer reads the sequence X1 … XT, so it must be the "
                                  f"network's first layer")
        steps = _count(spec.steps, "steps", where)
        act = activation_of(spec.activation, where)
        if not act.elementwise:
            raise InvalidArgument(f"{where}: softmax is an output activation; a recurrent layer takes an entrywise one")
        n_in, n = self.n, size(spec.hidden, where)
        Wx = self.parameter(f"Wx{l}", weight_shape(self.layout, n_in, n))
        Wh = self.parameter(f"Wh{l}", weight_shape(self.layout, n, n))
        b = self.parameter(f"b{l}", (n, 1))
        self.inputs = tuple(self.matrix(f"X{t}", n_in) for t in range(1, steps + 1))
        definitions, deltas, meanings, H = [], [], [], None
        for t, X in enumerate(self.inputs, 1):
            # Z_t = W_h H_{t−1} + W_x X_t + b 1ᵀ (H_0 = 0), H_t = f(Z_t)
            Z, H_t = self.matrix(f"Z{l}_{t}", n), self.matrix(f"H{l}_{t}", n)
            terms = ([linear(self.layout, Wh, H)] if H is not None else []) + [linear(self.layout, Wx, X),
                                                                                bias(self.layout, b, self.m)]
            definitions += [(Z, matadd(*terms)), (H_t, activate(act, Z, self.layout))]
            deltas.append((Z, self.matrix(f"delta{l}_{t}", n)))
            meanings += [(Z, f"the pre-activations of layer {l} at step {t}"),
                         (H_t, f"the hidden state of layer {l} after step {t}")]
            H = H_t
        self.n = n
        (Z, delta), (_, H_def) = deltas[-1], definitions[-1]
        return Built("recurrent", l, f"Layer {l}: recurrent ({act.name}), {steps} steps", self.inputs[0], H,
                     tuple(definitions), (Wx, Wh, b), tuple(deltas), meanings=tuple(meanings),
                     activated=Output(act, Z, H, H_def, delta))


def _deltas(definitions):
    """δ_Z named at every intermediate Z: delta_C2 for C2."""
    return tuple((Z, sp.MatrixSymbol(f"delta_{''.join(c for c in Z.name if c.isalpha())}"
                                     f"{''.join(c for c in Z.name if not c.isalpha())}", *Z.shape))
                 for Z, _ in definitions)


def _epsilon(eps, where):
    """ε > 0 as an exact number (a float as its decimal value: 1e-5 is 1/100000)."""
    if isinstance(eps, (bool, str)) or not isinstance(eps, (int, float, sp.Rational)) or not math.isfinite(eps) \
            or eps <= 0:
        raise InvalidArgument(f"{where}: eps must be a positive number, got {eps!r}")
    return sp.nsimplify(eps, rational=True) if isinstance(eps, float) else sp.Rational(eps)


def flatten(blocks):
    """The blocks in forward order, a residual's inner blocks before the residual itself."""
    for b in blocks:
        yield from flatten(b.inner)
        yield b
