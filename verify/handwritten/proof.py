"""Exact proofs of a derivation's equalities: both sides written out entry by entry in SymPy at small sizes, their
difference simplified to zero within a time limit. The network's values come from their definitions, each moved
value is a matrix of unknowns with its differential another, every other differential is Σ ∂S/∂u du over the
unknowns u moved, and each result (δ, ∂L/∂W) is SymPy's own derivative of the loss written out (verify.exact)."""
import re

import sympy as sp

from .. import exact
from .algebra import walk
from .meaning import NetworkMeaning

SIZE = 2            # every symbolic size is 2 in a proof
MAX_ENTRIES = 36    # a matrix of more entries is not written out
SECONDS = 5.0       # a proof SymPy has not decided by then is left to the numeric check (2 s alone: room for load)
BUDGET = 12.0       # and a derivation's proofs stop after this many seconds in all
SCALAR = {**exact.SCALAR, "exp": sp.exp, "log": sp.log, "abs": sp.Abs}
# the kinks' derivatives: 0 below, 1 (or the leak) above, as verify.recursion takes them
DERIVATIVE = {"relu": lambda z: sp.Heaviside(z, 0), "abs": sp.sign,
              "leaky_relu": lambda z: exact.LEAK + (1 - exact.LEAK) * sp.Heaviside(z, 0)}


class Explicit:
    """The values of a proof: explicit matrices of symbols for the inputs, parameters, δs and differentials, the
    forward values from their definitions."""

    def __init__(self, meaning, sources, opaque=False):
        self.meaning, self.opaque = meaning, opaque   # opaque: each δ and ∂L/∂X an unknown matrix
        self.dims = {s: (SIZE if isinstance(s, sp.Symbol) else s) for s in meaning.dims}
        self.values, self.sources = {}, sources

    def size(self, s):
        return int(sp.sympify(s).xreplace(self.dims))

    def matrix(self, name, shape):
        rows, cols = (self.size(s) for s in shape)
        if rows * cols > MAX_ENTRIES:
            raise OverflowError(name)
        return sp.ImmutableMatrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))

    def __getitem__(self, ident):
        if ident not in self.values:
            self.values[ident] = self._value(ident)
        return self.values[ident]

    def _value(self, ident):
        m = self.meaning
        if ident in self.sources:
            return self.matrix(ident, m.shape(ident)) if m.shape(ident) else sp.Symbol(ident, real=True)
        if ident.startswith("delta"):
            return self.matrix(ident, m.shape(ident)) if self.opaque else self.truth("Z" + ident[5:])
        if ident in ("L", "f"):
            return self.loss()
        shape = m.shape(ident)
        if shape is None:
            if ident == "m":
                return sp.Integer(self.size(getattr(m, "samples", 1)))
            if ident in getattr(m, "sizes", {}):
                return sp.Integer(self.size(m.sizes[ident]))
            if ident == "lambda":
                return sp.nsimplify(m.spec.weight_decay, rational=True)
            return sp.Symbol(ident, real=True)
        match = re.fullmatch(r"([ZA])(\d+)", ident)
        if isinstance(m, NetworkMeaning) and match:
            return self._forward(match.group(1), int(match.group(2)))
        return self.matrix(ident, shape)

    def loss(self):
        """L (or f) written out: the data term of A⁽ᴸ⁾ and Y, reduced, plus (λ/2) Σ ‖W‖²."""
        m = self.meaning
        if not isinstance(m, NetworkMeaning):
            return explicit(m.f, self)
        columns = (lambda M: M.T) if m.spec.layout == "AW" else (lambda M: M)
        A, Y = columns(self[f"A{m.L}"]), columns(self["Y"])
        data = exact.data_loss(m.spec.loss, A, Y)
        if m.spec.reduction == "mean":
            data = data / A.cols
        return data + self["lambda"] / 2 * sum(sum(w ** 2 for w in self[f"W{l}"]) for l in range(1, m.L + 1))

    def truth(self, ident):
        """∂L/∂ident written out: SymPy's derivative of the loss, the value `ident` made unknowns (u) for it and
        set back after."""
        unknown = Explicit(self.meaning, (*self.sources, ident))
        unknown.dims = self.dims
        u = unknown[ident]
        loss = unknown.loss()
        gradient = u.applyfunc(lambda e: sp.diff(loss, e)) if isinstance(u, sp.MatrixBase) else sp.diff(loss, u)
        value = self[ident]
        pairs = dict(zip(u, value)) if isinstance(u, sp.MatrixBase) else {u: value}
        return gradient.xreplace(pairs) if isinstance(gradient, sp.MatrixBase) else gradient.xreplace(pairs)

    def local(self, ident):
        """∂L/∂ident by the chain rule one layer up, with the δ there an unknown matrix D: ∂ tr(Dᵀ Z⁽ᵏ⁺¹⁾)/∂ident
        (the layer's own Z⁽ᵏ⁾ for W⁽ᵏ⁾, b⁽ᵏ⁾, plus λW⁽ᵏ⁾), or the loss's own derivative at the output."""
        m = self.meaning
        if not isinstance(m, NetworkMeaning):
            return self.truth(ident)
        base, k = re.fullmatch(r"([A-Za-z]+)(\d*)", ident).groups()
        k = 0 if ident == "X" else int(k)
        above = k if base in ("W", "b") else k + 1
        if above > m.L or base in ("A", "Z") and k == m.L:
            return self.truth(ident)
        unknown = Explicit(m, (*self.sources, ident))
        unknown.dims = self.dims
        u, D = unknown[ident], self.matrix(f"delta{above}", m.shape(f"delta{above}"))
        term = (D.T * unknown[f"Z{above}"]).trace()
        gradient = u.applyfunc(lambda e: sp.diff(term, e)).xreplace(dict(zip(u, self[ident])))
        return gradient + self["lambda"] * self[ident] if base == "W" else gradient

    def tangent(self, ident):
        """dS: the unknown matrix d<S> for a value moved, else Σ ∂S/∂u du over the unknowns u of the values moved."""
        if ident in self.sources:
            return self.matrix("d" + ident, self.meaning.shape(ident))
        return self.differential(self[ident])

    def differential(self, value):
        pairs = [(u, du) for s in self.sources for u, du in zip(self[s], self.tangent(s))]
        if isinstance(value, sp.MatrixBase):
            return value.applyfunc(lambda e: sum(sp.diff(e, u) * du for u, du in pairs))
        return sum(sp.diff(value, u) * du for u, du in pairs)

    def _forward(self, kind, l):
        """Z⁽ˡ⁾ = W A⁽ˡ⁻¹⁾ + b 𝟏ᵀ (in the layout's own form), A⁽ˡ⁾ = σ_l(Z⁽ˡ⁾)."""
        m = self.meaning
        if kind == "A":
            return self.activation(("layer", l))[0](self[f"Z{l}"])
        A, W = self["X" if l == 1 else f"A{l - 1}"], self[f"W{l}"]
        layout = m.spec.layout
        Z = W * A if layout == "WA" else W.T * A if layout == "WtA" else A * W
        if m.spec.has_bias(l):
            b = self[f"b{l}"]
            Z = Z + (b * sp.ones(1, Z.cols) if layout != "AW" else sp.ones(Z.rows, 1) * b.T)
        return sp.ImmutableMatrix(Z)

    def activation(self, key):
        """(f, f′) on explicit matrices, entry by entry (softmax: per sample)."""
        m = self.meaning
        name = m.spec.activations[key[1] - 1] if isinstance(key, tuple) else key
        if name == "softmax":
            rows = isinstance(m, NetworkMeaning) and m.spec.layout == "AW"

            def softmax(Z):
                Z = Z.T if rows else Z
                E = Z.applyfunc(sp.exp)
                S = sp.ImmutableMatrix(E.rows, E.cols, lambda i, j: E[i, j] / sum(E[:, j]))
                return S.T if rows else S
            return softmax, lambda Z: softmax(Z).multiply_elementwise(softmax(Z).applyfunc(lambda s: 1 - s))
        if name not in SCALAR:
            raise KeyError(name)
        f = SCALAR[name]
        x = sp.Dummy(real=True)
        df = DERIVATIVE.get(name) or sp.Lambda(x, sp.diff(f(x), x))
        return (lambda M: M.applyfunc(f) if isinstance(M, sp.MatrixBase) else f(M),
                lambda M: M.applyfunc(df) if isinstance(M, sp.MatrixBase) else df(M))


def explicit(node, env):
    """The value of a typed node with explicit SymPy matrices."""
    kind, args = node.kind, node.args
    if kind == "sym":
        return env[args[0]]
    if kind == "num":
        return sp.nsimplify(args[0], rational=True)
    if kind in ("ones", "full"):
        ones = sp.ones(*(env.size(s) for s in node.shape))
        return ones if kind == "ones" else explicit(args[0], env) * ones
    if kind == "eye":
        return sp.eye(env.size(node.shape[0]))
    if kind == "dsym":
        return env.tangent(args[0])
    if kind == "dexpr":
        return env.differential(explicit(args[0], env))
    if kind == "grad":
        return env.matrix("g" + args[0], node.shape) if env.opaque else env.truth(args[0])
    if kind == "call":
        name, prime, act, a = args
        x = explicit(a, env)
        if name == "tr":
            return x.trace() if isinstance(x, sp.MatrixBase) else x
        if name == "det":
            return x.det()
        if name == "sum":
            return sum(x) if isinstance(x, sp.MatrixBase) else x
        if name == "diag":
            return sp.diag(*list(x))
        return env.activation(act)[1 if prime else 0](x)
    values = [explicit(a, env) for a in args if hasattr(a, "kind")]
    if kind == "mul":
        return values[0] * values[1]
    if kind == "had":
        a, b = values
        return a.multiply_elementwise(b) if isinstance(a, sp.MatrixBase) else a * b
    if kind == "hdiv":
        a, b = values
        return a.multiply_elementwise(b.applyfunc(lambda e: 1 / e)) if isinstance(a, sp.MatrixBase) else a / b
    if kind == "div":
        return values[0] / values[1]
    if kind in ("add", "sub"):
        return values[0] + values[1] if kind == "add" else values[0] - values[1]
    if kind == "neg":
        return -values[0]
    if kind == "T":
        return values[0].T
    if kind == "pow":
        return values[0] ** args[1]
    if kind == "hpow":
        return values[0].applyfunc(lambda e: e ** args[1])
    if kind == "inv":
        return values[0].inv() if isinstance(values[0], sp.MatrixBase) else 1 / values[0]
    if kind == "norm":
        return sp.sqrt(sum(e ** 2 for e in values[0]))
    if kind == "step":
        return values[0].applyfunc(lambda e: sp.Heaviside(e, 0))
    raise KeyError(kind)


def zero(e):
    """Whether SymPy shows e = 0: expanded, then simplified (the caller limits the time)."""
    return sp.expand(e) == 0 or sp.simplify(e) == 0


def prove(a, b, meaning, sources):
    """True when the typed sides a and b are equal as expressions at small sizes; None when they cannot be written
    out (a matrix too large, a function SymPy is not given) or SymPy does not show it. Each δ and result is an
    unknown first (a step of algebra is shown fast so), then the result stated one step of the chain rule from the
    unknown δ above it (a step of the recursion), then everything written out."""
    results = lambda n: any(k.kind == "grad" or k.kind == "sym" and k.args[0].startswith("delta")  # noqa: E731
                            for k in walk(n))
    result = a.kind == "grad" or a.kind == "sym" and a.args[0].startswith("delta")
    modes = (("opaque", "local", "explicit") if results(a) and results(b) else ("local", "explicit") if result
             else ("explicit",))
    for mode in modes:
        env = Explicit(meaning, tuple(sources), opaque=mode != "explicit")
        try:
            left = explicit(a, env)
            if mode == "local" and result:   # the result stated: one step of the chain rule from the δ above
                left = env.local(a.args[0] if a.kind == "grad" else "Z" + a.args[0][5:])
            difference = left - explicit(b, env)
        except (KeyError, OverflowError, ValueError, TypeError, ZeroDivisionError):
            return None
        entries = list(difference) if isinstance(difference, sp.MatrixBase) else [difference]
        if all(zero(e) for e in entries):
            return True
    return None
