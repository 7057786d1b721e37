"""The blocks a network is made of, each one class registered once (register_block): its arguments are its dataclass
fields (the keys of a spec file's [[layers]] table, with their types, defaults and bounds), build(b, A, last) writes
its named definitions from the matrix A before it through the Builder b, and its parameters carry their metadata
(role, layer, shape, meaning, weight decay). Dense layers, residual connections, layer norm, self-attention, 1-D
convolution and recurrent (Elman) layers are registered here; a user's block the same way."""
import math
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from typing import ClassVar

import sympy as sp

from ..core import registry
from ..core.expr import Select, hadamard, hadamard_power, matadd, matmul, tp
from ..core.functions import ELT, Softmax, apply, body_of
from ..core.registry import ACTIVATIONS, Activation
from ..errors import InvalidArgument

MAX_NESTING = 100   # residuals inside residuals: each is a level of recursion in building and printing
MAX_SIZE = 10**5    # a width a spec file may give
MAX_COUNT = 100     # a spec's steps, heads and kernel width: each unrolls into that many named definitions
SIZE = (int, str)   # a width: a positive integer or a name
INITS = ("uniform", "zeros", "ones")   # how training starts a parameter (Parameter.init)
BLOCKS: dict[str, type] = {}   # spec key -> block class, in registration order


def arg(kind, help, default=MISSING, bounds=None):
    """A block's argument: its type (a class or a tuple of them; SIZE for a width), what it is, its default, the
    integers a spec may give."""
    return field(default=default, metadata={"type": kind, "help": help, "bounds": bounds})


@dataclass(frozen=True)
class Argument:
    """One argument of a block kind, as a spec file or the CLI gives it."""

    name: str
    type: object
    help: str
    default: object
    bounds: object

    @property
    def required(self):
        return self.default is MISSING


class Block:
    """A kind of layer: a frozen dataclass whose fields are its arguments (declared with `arg`), a spec `key`, the
    `kind` in words, and build(b, A, last) -> Built (b: the Builder; A: the matrix before it; last: whether it ends
    the network)."""

    key: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    def build(self, b, A, last):
        raise NotImplementedError(f"{type(self).__name__}.build")

    @classmethod
    def arguments(cls):
        """The block's arguments, in order."""
        return tuple(Argument(f.name, f.metadata.get("type", object), f.metadata.get("help", ""), f.default,
                              f.metadata.get("bounds")) for f in fields(cls))

    def plain(self, built):
        """The block as plain data, for a verification written apart from derive: its kind, its position l and its
        arguments (an activation by name, with σ as a SymPy Lambda; inner blocks as plain data)."""
        out = {"kind": self.kind, "index": built.index}
        for a in self.arguments():
            value = getattr(self, a.name)
            if a.name == "layers":
                out["layers"] = [inner.plain() for inner in built.inner]
            elif a.name == "activation":
                act = activation_of(value, built.title)
                out.update(activation=act.name, function=act.definition() if act.elementwise else None)
            elif isinstance(value, (sp.Integer, int)) and not isinstance(value, bool):
                out[a.name] = int(value)
            elif isinstance(value, (float, sp.Rational)):
                out[a.name] = float(value)
            else:
                out[a.name] = value
        return out


def register_block(cls):
    """Register a block class (a frozen dataclass subclassing Block, with `key`, `kind` and `build`) under its
    spec key; usable as a decorator. A key registered before is an error."""
    if not (isinstance(cls, type) and issubclass(cls, Block) and is_dataclass(cls)):
        raise InvalidArgument(f"register_block: {cls!r} is not a dataclass subclassing derive.Block")
    if not (isinstance(cls.key, str) and cls.key.isidentifier() and isinstance(cls.kind, str) and cls.kind):
        raise InvalidArgument(f"register_block: {cls.__name__} needs a `key` (an identifier, its name in spec files) "
                              f"and a `kind` (in words), got key={cls.key!r}, kind={cls.kind!r}")
    if cls.build is Block.build:
        raise InvalidArgument(f"register_block: {cls.__name__} has no build(b, A, last)")
    known = BLOCKS.get(cls.key)
    if known is not None and known is not cls:
        raise InvalidArgument(f"register_block: key {cls.key!r} is {known.__name__}'s already")
    BLOCKS[cls.key] = cls
    return cls


@dataclass(frozen=True)
class Parameter:
    """A parameter of a built network: its symbol, its role ("W", "b", "gamma", "Wq", …), its layer l, what it is in
    words, whether weight decay penalises it, and how training starts it: `init` "uniform" (U(−1/√fan_in,
    1/√fan_in), as torch.nn.Linear's weights, fan_in the inputs each output reads), "zeros" or "ones"."""

    symbol: sp.MatrixSymbol
    role: str
    layer: int
    meaning: str
    decay: bool = True
    init: str = "zeros"
    fan_in: object = None

    @property
    def name(self):
        return self.symbol.name

    @property
    def shape(self):
        return self.symbol.shape


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
        """The block as plain data (Block.plain)."""
        return self.spec.plain(self)


def size(n, where):
    """n as a SymPy size: a positive integer or a symbol; anything else is a ValueError naming `where`."""
    if isinstance(n, str) and n.isidentifier():
        return sp.Symbol(n, integer=True, positive=True)
    if isinstance(n, sp.Symbol) and n.is_positive is not False:
        return n
    if isinstance(n, (int, sp.Integer)) and not isinstance(n, bool) and n > 0:
        return sp.Integer(n)
    raise InvalidArgument(f"{where}: size must be a positive integer or a SymPy symbol, got {n!r}")


def count(n, what, where, least=1):
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


def entrywise(spec, where, what):
    """An entrywise activation for a block inside the network (softmax is an output activation)."""
    act = activation_of(spec, where)
    if not act.elementwise:
        raise InvalidArgument(f"{where}: softmax is an output activation; {what} takes an entrywise one")
    return act


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
    """Builds blocks one after another: the current matrix's width n and number of samples m, the layer counter l,
    and what the blocks declare (parameters with their metadata, constants, a sequence's inputs)."""

    def __init__(self, layout, samples, inputs):
        self.layout, self.m, self.n = layout, samples, inputs
        self.l, self.residuals, self.first = 0, 0, True
        self.nesting = 0       # the residuals being built, one inside the other
        self.parameters = {}   # name -> Parameter
        self.constants = {}    # a block's constant as a symbol (ε of a layer norm) -> its value, for code
        self.inputs = None
        self.given = {}        # an input a block reads besides the network's (a dropout's mask) -> what it is

    def matrix(self, name, features, samples=None):
        """A matrix of `features` per sample: samples × features in layout AW, features × samples otherwise."""
        m = self.m if samples is None else samples
        return sp.MatrixSymbol(name, m, features) if self.layout == "AW" else sp.MatrixSymbol(name, features, m)

    def statistic(self, name):
        """One number per sample: m × 1 in layout AW, 1 × m otherwise."""
        return sp.MatrixSymbol(name, self.m, 1) if self.layout == "AW" else sp.MatrixSymbol(name, 1, self.m)

    def per_sample_sum(self, M):
        """Each sample's features summed: M 1 (AW) or 1ᵀ M."""
        n = M.cols if self.layout == "AW" else M.rows
        return matmul(M, sp.OneMatrix(n, 1)) if self.layout == "AW" else matmul(sp.OneMatrix(1, n), M)

    def spread(self, s, n=None):
        """A per-sample statistic repeated over the n features: s 1ᵀ (AW) or 1 s."""
        n = self.n if n is None else n
        return matmul(s, sp.OneMatrix(1, n)) if self.layout == "AW" else matmul(sp.OneMatrix(n, 1), s)

    def every_sample(self, v):
        """The column v repeated for every sample: v 1ᵀ, or 1 vᵀ in layout AW."""
        return bias(self.layout, v, self.m)

    def built(self, spec, index, title, input, output, definitions, parameters, meanings=()):
        """A Built block whose every definition names a δ (δ_C for C)."""
        return Built(spec.kind, index, title, input, output, tuple(definitions), tuple(parameters),
                     named_deltas(definitions), meanings=tuple(meanings))

    def layer(self, what):
        """The next layer's position l and how errors name it: "layer 3 (layer norm)"."""
        self.l += 1
        return self.l, f"layer {self.l}" if what == "dense" else f"layer {self.l} ({what})"

    def parameter(self, role, shape, meaning, decay=True, fan_in=None, init=None):
        """The parameter `<role><l>` of the current layer, with its metadata (init "uniform" when fan_in is given, else
        "zeros", unless `init` says)."""
        if init not in (None, *INITS):
            raise InvalidArgument(f"parameter {role}{self.l}: unknown init {init!r}; valid: {', '.join(INITS)}")
        P = sp.MatrixSymbol(f"{role}{self.l}", *shape)
        init = init or ("uniform" if fan_in is not None else "zeros")
        self.parameters[P.name] = Parameter(P, role, self.l, meaning, decay, init, fan_in)
        return P

    def first_only(self, where, what, reads="the sequence X1 … XT"):
        """Refuse a block that reads the network's inputs anywhere but first."""
        if not self.first:
            raise InvalidArgument(f"{where}: {what} reads {reads}, so it must be the network's first layer")

    def given_input(self, name, features, meaning):
        """An input `<name><l>` the current layer reads, given with X on every call (a dropout's mask), `features` per
        sample."""
        M = self.matrix(f"{name}{self.l}", features)
        self.given[M] = meaning
        return M

    def constant(self, name, value):
        """A constant of the current layer: a symbol `<name><l>` in the derivation (positive, or non-negative for a
        value 0), `value` in code."""
        c = sp.Symbol(f"{name}{self.l}", **({"positive": True} if value > 0 else {"nonnegative": True}))
        self.constants[c] = value
        return c

    def build(self, specs, A, last):
        """Build `specs` in turn from A; the Built blocks and the output."""
        built = []
        for k, spec in enumerate(specs):
            if not isinstance(spec, Block) or BLOCKS.get(type(spec).key) is not type(spec):
                raise InvalidArgument(f"layer {self.l + 1}: {spec!r} is not a registered block; blocks are "
                                      f"{', '.join(b.__name__ for b in BLOCKS.values())} (derive.register_block adds one)")
            block = replace(spec.build(self, A, last and k == len(specs) - 1), spec=spec)
            self.first = False
            built.append(block)
            A = block.output
        return built, A


@register_block
@dataclass(frozen=True)
class Dense(Block):
    """A dense layer: `units` outputs (a positive int or a SymPy symbol), an activation, a bias or not; `tie` names
    an earlier weight ("W1") whose transpose this layer uses (a tied autoencoder): the weight is shared.

    `activation` is a registered name (derive.ACTIVATIONS), or any differentiable SymPy function class or Lambda.
    """

    key: ClassVar[str] = "dense"
    kind: ClassVar[str] = "dense"
    units: object = arg(SIZE, "the number of units", bounds=(1, MAX_SIZE))
    activation: object = arg(str, "the activation (a registered name)", "sigmoid")
    bias: bool = arg(bool, "whether the layer adds a bias", True)
    tie: object = arg(str, "an earlier weight (W1) whose transpose this layer uses", None)

    def build(self, b, A, last):
        l, where = b.layer("dense")
        act = activation_of(self.activation, where)
        if not act.elementwise and not last:
            raise InvalidArgument(f"{where}: softmax is only valid on the output layer (the network's last)")
        n_in, n = b.n, size(self.units, where)
        if not act.elementwise and n == 1:
            raise InvalidArgument(f"{where}: softmax over a single unit is the constant 1; use sigmoid")
        shape = weight_shape(b.layout, n_in, n)
        W = (self._tied(b, shape, where) if self.tie is not None
             else b.parameter("W", shape, f"the weights of layer {l}", fan_in=n_in))
        bias_ = b.parameter("b", (n, 1), f"the bias of layer {l}", decay=False) if self.bias else None
        Z, A_out, delta = (b.matrix(f"{k}{l}", n) for k in ("Z", "A", "delta"))
        Z_def = pre_activation(b.layout, W, A, bias_, b.m)
        A_def = activate(act, Z, b.layout)
        layer = Layer(l, act, W, bias_, Z, A_out, delta, Z_def, A_def)
        b.n = n
        note = f"the weight is {self.tie}ᵀ, shared with {self.tie}: its gradient sums both uses" if self.tie else ""
        params = tuple(P for P in (W if self.tie is None else None, bias_) if P is not None)
        return Built(self.kind, l, f"Layer {l}: dense, {act.name}", A, A_out, ((Z, Z_def), (A_out, A_def)), params,
                     ((Z, delta),), layer=layer, note=note, activated=layer,
                     meanings=((Z, f"the pre-activations of layer {l}"), (A_out, f"the activations of layer {l}")))

    def _tied(self, b, shape, where):
        known = [k for k, P in b.parameters.items() if P.role == "W"]
        if not isinstance(self.tie, str) or self.tie not in known:
            raise InvalidArgument(f"{where}: tie={self.tie!r} names no earlier dense weight (the weights so far: "
                                  f"{', '.join(known) or 'none yet'})")
        W = b.parameters[self.tie].symbol
        if tuple(W.T.shape) != tuple(shape):
            raise InvalidArgument(f"{where}: tie={self.tie!r}: this layer needs a weight of shape "
                                  f"{tuple(shape)}, and {self.tie}ᵀ has shape {tuple(W.T.shape)}")
        return tp(W)


@register_block
@dataclass(frozen=True)
class Residual(Block):
    """y = x + F(x): the blocks F, whose output must have the width of x."""

    key: ClassVar[str] = "residual"
    kind: ClassVar[str] = "residual"
    layers: tuple = arg(list, "the blocks F of y = x + F(x)")

    def __init__(self, layers):
        object.__setattr__(self, "layers", tuple(layers))

    def build(self, b, A, last):
        b.residuals += 1
        k = b.residuals
        if not self.layers:
            raise InvalidArgument(f"residual {k}: needs at least one layer")
        if b.nesting == MAX_NESTING:
            raise InvalidArgument(f"residual {k}: residuals nest at most {MAX_NESTING} deep")
        n, m, first = b.n, b.m, b.l + 1
        b.nesting += 1
        inner, F = b.build(self.layers, A, last)
        b.nesting -= 1
        where = f"residual {k} (layers {first}–{b.l})"
        if (b.n, b.m) != (n, m):
            raise InvalidArgument(f"{where}: x + F(x) needs F(x) of the shape of x: x has width {n} and {m} "
                                  f"samples, F(x) width {b.n} and {b.m} samples")
        R, delta = b.matrix(f"R{k}", n), b.matrix(f"delta_R{k}", n)
        span = f"layers {first}–{b.l}" if b.l > first else f"layer {first}"
        return Built(self.kind, k, f"Residual {k}: a skip connection over {span}", A, R,
                     ((R, matadd(A, F)),), (), ((R, delta),), inner=tuple(inner),
                     meanings=((R, f"the residual sum: the input of {span} plus {'their' if b.l > first else 'its'} "
                                   "output"),))


@register_block
@dataclass(frozen=True)
class LayerNorm(Block):
    """γ ⊙ (z − μ)/√(σ² + ε) + β per sample over its features (μ, σ² the sample's mean and variance)."""

    key: ClassVar[str] = "layer_norm"
    kind: ClassVar[str] = "layer norm"
    eps: object = arg((int, float), "the constant ε added to the variance", 1e-5)

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        eps = b.constant("epsilon", epsilon(self.eps, where))
        n = b.n
        gamma = b.parameter("gamma", (n, 1), f"the scale of layer {l}", decay=False, init="ones")
        beta = b.parameter("beta", (n, 1), f"the shift of layer {l}", decay=False)
        mu, v, s = (b.statistic(f"{k}{l}") for k in ("mu", "v", "s"))
        C, N, A_out = (b.matrix(f"{k}{l}", n) for k in ("C", "N", "A"))
        # μ = (1/n) Z 1, C = Z − μ 1ᵀ, v = (1/n) C^∘2 1, s = (v + ε)^∘(−1/2), N = C ⊙ s 1ᵀ, A = N ⊙ 1 γᵀ + 1 βᵀ
        definitions = ((mu, b.per_sample_sum(A) / n), (C, matadd(A, -b.spread(mu))),
                       (v, b.per_sample_sum(hadamard_power(C, 2)) / n),
                       (s, hadamard_power(matadd(v, eps * sp.OneMatrix(*v.shape)), sp.Rational(-1, 2))),
                       (N, hadamard(C, b.spread(s))),
                       (A_out, matadd(hadamard(N, b.every_sample(gamma)), b.every_sample(beta))))
        meanings = ((mu, "the mean of each sample's features"), (C, "the centred features"),
                    (v, "the variance of each sample's features"), (s, "one over the standard deviation, per sample"),
                    (N, "the normalised features"), (A_out, f"the output of layer {l}"))
        return b.built(self, l, f"Layer {l}: layer norm", A, A_out, definitions, (gamma, beta), meanings)


@register_block
@dataclass(frozen=True)
class SelfAttention(Block):
    """Scaled dot-product self-attention over the samples axis (the tokens of one sequence): Q = X W_q, K = X W_k,
    V = X W_v, per head P_h = softmax(Q_h K_hᵀ/√d_k) per query (causal: each token sees those before it and
    itself), output concat_h(P_h V_h) W_o; heads are column blocks of width d_k; no biases."""

    key: ClassVar[str] = "self_attention"
    kind: ClassVar[str] = "self-attention"
    d_k: int = arg(int, "the width of each head's queries, keys and values", bounds=(1, MAX_SIZE))
    heads: int = arg(int, "the number of heads", 1, bounds=(1, MAX_COUNT))
    causal: bool = arg(bool, "whether each token sees only those before it and itself", False)

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        dk, heads = count(self.d_k, "d_k", where), count(self.heads, "heads", where)
        n, m, AW = b.n, b.m, b.layout == "AW"
        if self.causal and m == 1:
            raise InvalidArgument(f"{where}: a causal mask needs a token axis; this network has one sample (m = 1)")
        width = heads * dk
        scale = b.constant("d_k", dk)   # S = Q Kᵀ/√d_k with d_k a symbol in the derivation, its value in code
        Wq, Wk, Wv = (b.parameter(f"W{k}", weight_shape(b.layout, n, width), f"the {what} weights of layer {l}",
                                  fan_in=n)
                      for k, what in zip("qkv", ("query", "key", "value")))
        Wo = b.parameter("Wo", weight_shape(b.layout, width, n), f"the output weights of layer {l}", fan_in=width)
        Q, K, V, O, A_out = (b.matrix(f"{k}{l}", w) for k, w in (("Q", width), ("K", width), ("V", width),
                                                                 ("O", width), ("A", n)))
        definitions = [(Q, linear(b.layout, Wq, A)), (K, linear(b.layout, Wk, A)), (V, linear(b.layout, Wv, A))]
        meanings = {Q: f"the queries of layer {l}, the heads side by side", K: f"the keys of layer {l}",
                    V: f"the values of layer {l}", O: f"the heads' outputs side by side (layer {l})",
                    A_out: f"the output of layer {l}", scale: f"the width of each head's queries and keys, {dk}"}
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
                Qh, Kh, Vh = (b.matrix(f"{k}{tag}", dk) for k in "QKV")
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
            definitions += [(S, scores / sp.sqrt(scale)), (P, Softmax(S, 1 if AW else 0, self.causal))]
            meanings.update({S: f"the attention scores of layer {l}{head}",
                             P: f"the attention weights of layer {l}{head}: each query's weights sum to 1"})
            parts.append(out)
        definitions += [(O, matadd(*parts)), (A_out, linear(b.layout, Wo, O))]
        title = f"Layer {l}: {'causal ' if self.causal else ''}self-attention, {heads} head{'s' * (heads > 1)}"
        return b.built(self, l, title, A, A_out, definitions, (Wq, Wk, Wv, Wo), meanings.items())


@register_block
@dataclass(frozen=True)
class Conv1D(Block):
    """A 1-D convolution over the samples (time) axis: Z[t] = Σ_j X[t·stride + j − padding] K_j + bᵀ, K_j rows
    j·c_in … (j + 1)·c_in − 1 of K, written Z = Σ_j S_j X E_j K + 1 bᵀ with constant shift S_j and tap E_j."""

    key: ClassVar[str] = "conv1d"
    kind: ClassVar[str] = "convolution"
    channels: int = arg(int, "the number of output channels", bounds=(1, MAX_SIZE))
    width: int = arg(int, "the kernel's width in time steps", bounds=(1, MAX_COUNT))
    stride: int = arg(int, "the step between outputs", 1, bounds=(1, MAX_SIZE))
    padding: int = arg(int, "zero steps added at either end", 0, bounds=(0, MAX_SIZE))
    activation: object = arg(str, "the activation (a registered name)", "identity")

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        channels, width = count(self.channels, "channels", where), count(self.width, "width", where)
        stride, padding = count(self.stride, "stride", where), count(self.padding, "padding", where, 0)
        act = entrywise(self.activation, where, "a convolution")
        if not isinstance(b.m, sp.Integer):
            raise InvalidArgument(f"{where}: a convolution over the samples (time) axis needs their number: pass "
                                  f"samples=<int> (got {b.m})")
        if not isinstance(b.n, sp.Integer):
            raise InvalidArgument(f"{where}: a convolution needs the number of input channels as an integer, "
                                  f"got {b.n}")
        T, c_in = int(b.m), int(b.n)
        T_out = (T + 2 * padding - width) // stride + 1
        if T_out < 1:
            raise InvalidArgument(f"{where}: width {width} is longer than the {T} time steps plus padding "
                                  f"{padding} on each side")
        AW, WA = b.layout == "AW", b.layout == "WA"
        K = b.parameter("K", (width * c_in, channels) if not WA else (channels, width * c_in),
                        f"the kernel of layer {l}, one block of rows per tap", fan_in=width * c_in)
        bias_ = b.parameter("b", (channels, 1), f"the bias of layer {l}", decay=False)
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
        b.m, b.n = sp.Integer(T_out), sp.Integer(channels)
        Z, A_out = b.matrix(f"Z{l}", channels), b.matrix(f"A{l}", channels)
        z_def = matadd(*terms, bias(b.layout, bias_, b.m))
        if act.body == ELT:
            definitions.append((A_out, z_def))
            delta = b.matrix(f"delta_A{l}", channels)
            meanings[A_out] = f"the output of layer {l}: Z = Σ_j S_j X K_j + 1 bᵀ"
            named, activated = A_out, None
        else:
            definitions += [(Z, z_def), (A_out, activate(act, Z, b.layout))]
            delta = b.matrix(f"delta{l}", channels)
            meanings.update({Z: f"the pre-activations of layer {l}", A_out: f"the output of layer {l}"})
            named, activated = Z, Output(act, Z, A_out, definitions[-1][1], delta)
        title = f"Layer {l}: convolution ({act.name}), {channels} channels, width {width}" + (
            f", stride {stride}" if stride > 1 else "") + (f", padding {padding}" if padding else "")
        deltas = (*named_deltas(definitions[:width]), (named, delta))
        return Built(self.kind, l, title, A, A_out, tuple(definitions), (K, bias_), deltas,
                     meanings=tuple(meanings.items()), activated=activated)


@register_block
@dataclass(frozen=True)
class Recurrent(Block):
    """An Elman layer H_t = f(W_h H_{t−1} + W_x X_t + b 1ᵀ), H_0 = 0, unrolled over `steps` with shared weights; it
    reads the sequence X1 … XT (so it comes first) and passes H_T on."""

    key: ClassVar[str] = "recurrent"
    kind: ClassVar[str] = "recurrent"
    hidden: object = arg(SIZE, "the width of the hidden state", bounds=(1, MAX_SIZE))
    steps: int = arg(int, "the number of time steps", bounds=(1, MAX_COUNT))
    activation: object = arg(str, "the activation (a registered name)", "tanh")

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        b.first_only(where, "a recurrent layer")
        steps = count(self.steps, "steps", where)
        act = entrywise(self.activation, where, "a recurrent layer")
        n_in, n = b.n, size(self.hidden, where)
        Wx = b.parameter("Wx", weight_shape(b.layout, n_in, n), f"the input weights of layer {l}", fan_in=n_in)
        Wh = b.parameter("Wh", weight_shape(b.layout, n, n), f"the recurrent weights of layer {l}", fan_in=n)
        bias_ = b.parameter("b", (n, 1), f"the bias of layer {l}", decay=False)
        b.inputs = tuple(b.matrix(f"X{t}", n_in) for t in range(1, steps + 1))
        definitions, deltas, meanings, H = [], [], [], None
        for t, X in enumerate(b.inputs, 1):
            # Z_t = W_h H_{t−1} + W_x X_t + b 1ᵀ (H_0 = 0), H_t = f(Z_t)
            Z, H_t = b.matrix(f"Z{l}_{t}", n), b.matrix(f"H{l}_{t}", n)
            terms = ([linear(b.layout, Wh, H)] if H is not None else []) + [linear(b.layout, Wx, X),
                                                                             bias(b.layout, bias_, b.m)]
            definitions += [(Z, matadd(*terms)), (H_t, activate(act, Z, b.layout))]
            deltas.append((Z, b.matrix(f"delta{l}_{t}", n)))
            meanings += [(Z, f"the pre-activations of layer {l} at step {t}"),
                         (H_t, f"the hidden state of layer {l} after step {t}")]
            H = H_t
        b.n = n
        (Z, delta), (_, H_def) = deltas[-1], definitions[-1]
        return Built(self.kind, l, f"Layer {l}: recurrent ({act.name}), {steps} step{'s' if steps > 1 else ''}", b.inputs[0], H,
                     tuple(definitions), (Wx, Wh, bias_), tuple(deltas), meanings=tuple(meanings),
                     activated=Output(act, Z, H, H_def, delta))


def named_deltas(definitions):
    """δ_Z named at every intermediate Z: delta_C2 for C2."""
    return tuple((Z, sp.MatrixSymbol(f"delta_{''.join(c for c in Z.name if c.isalpha())}"
                                     f"{''.join(c for c in Z.name if not c.isalpha())}", *Z.shape))
                 for Z, _ in definitions)


def epsilon(eps, where):
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
