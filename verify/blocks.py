"""An independent NumPy reference for networks of blocks: one class per block kind (dense, residual, layer norm,
self-attention, 1-D convolution, recurrent), registered once in KINDS, each with its parameters, a forward and a
backward pass written by hand from the textbook formulas, its classic mistake and its forward pass in SymPy (for the
exact proof); nothing from `derive`.

Rows are samples (tokens, time steps) inside this module: layouts WA and WtA are transposed on the way in and out
(and WA's weights, which map columns, too). A block's backward pass can make its classic mistake on request, so that
verify can say which one a user's code makes. A kind registered with a forward pass only (register_block) is checked
against central differences of the reference's loss.
"""
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import exact
from .numeric import central_difference
from .recursion import ACTIVATIONS, Custom, _activation, _loss, data_loss


@dataclass(frozen=True)
class Param:
    """A parameter of a block: its name, its shape as this module holds it (rows as samples: a weight maps features in
    to features out), whether it is a weight (penalised by the weight decay, and stored transposed in layout WA), and
    the centre and spread its random values are drawn with."""

    name: str
    shape: tuple
    weight: bool = False
    centre: float = 0.0
    spread: float = 1.0
    maps: bool = True   # a weight that maps features in to features out (not an embedding's table)


class Block:
    """A block of verify's reference, built from its plain specification (a dict with kind, index and its arguments).
    A subclass gives parameters(n, size) and forward(x, a); backward(saved, d, a, add, wrong), explicit(x, a),
    `mistakes` and linear() where it has them."""

    kind: str | None = None
    mistakes: dict[str, str] = {}    # {key: in words}: the classic mistakes of a hand-written backward pass, the first the likeliest
    backward = None   # (saved, ∂L/∂y, arrays, add(name, gradient), wrong: a key of mistakes or None) -> ∂L/∂x;
    #                   None: central differences
    explicit = None   # (x, arrays as explicit SymPy matrices) -> y; None: no exact proof
    steps = 0         # a recurrent first block reads X1 … X_steps

    def __init__(self, spec):
        self.spec, self.index = spec, spec.get("index")

    def name(self, role):
        """The name of this block's parameter `role` (W, gamma, …): the role and the block's position."""
        return f"{role}{self.index}"

    def parameters(self, n, size):
        """([Param], features out) on n features in; `size` makes a size (a number or name) a number."""
        return [], n

    def samples(self, m):
        """The number of rows after the block, of m before."""
        return m

    def given(self, n):
        """{name: features per sample} of the inputs the block reads besides the network's (a dropout's mask), on n
        features in."""
        return {}

    draw_input = None   # (shape, rng) -> random values of an input the block reads (rows as samples): a dropout's
    #                     mask, an embedding's one-hot tokens; None: normal values

    def forward(self, x, a):
        """(y, what the backward pass needs) for the rows x and the arrays `a` by name."""
        raise NotImplementedError

    def walk(self):
        """This block and the blocks inside it."""
        yield self

    def linear(self):
        """(this block without its output activation, the activation's block) where the Gauss–Newton split is at that
        activation's Z; None: the split is at the block's output."""
        return None

    def constants(self):
        """{symbol name: value} of the constants derive writes as symbols (a layer norm's ε)."""
        return {}


def _softmax_rows(z, causal=False):
    if causal:   # token i attends to tokens j ≤ i
        z = np.where(np.triu(np.ones(z.shape, dtype=bool), 1), -np.inf, z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_rows_exact(Z, causal=False):
    """softmax of each row of an explicit SymPy matrix (causal: over the entries j ≤ i, the others 0)."""
    def entry(i, j):
        keep = range(i + 1) if causal else range(Z.cols)
        return sp.exp(Z[i, j]) / sum(sp.exp(Z[i, k]) for k in keep) if j in keep else sp.S.Zero
    return sp.ImmutableMatrix(Z.rows, Z.cols, entry)


class Activated(Block):
    """A block that ends with an activation: a name verify writes out, softmax over each row, or a Custom one."""

    def __init__(self, spec):
        super().__init__(spec)
        self.act = _activation(spec, self.index)

    def activate(self, z):
        return _softmax_rows(z) if self.act == "softmax" else self._f()[0](z)

    def through(self, z, y, d):
        """∂L/∂Z from ∂L/∂Y: the softmax's Jacobian per row, d ⊙ σ'(z) otherwise."""
        return y * (d - np.sum(d * y, axis=1, keepdims=True)) if self.act == "softmax" else d * self._f()[1](z)

    def activate_exact(self, z):
        if self.act == "softmax":
            return _softmax_rows_exact(z)
        return z.applyfunc(exact.SCALAR[self.act] if isinstance(self.act, str) else self.act.function)

    def _f(self):
        return self.act.numpy() if isinstance(self.act, Custom) else ACTIVATIONS[self.act]

    def linear(self):   # an identity's Z is the output A
        return None if self.act == "identity" else (type(self)({**self.spec, "activation": "identity",
                                                                 "function": None}), self)


class Dense(Activated):
    """Z = A W + 1 bᵀ, A' = f(Z); a tied layer uses the transpose of another layer's weight."""

    kind = "dense"

    def weight(self, a):
        return a[self.spec["tie"]].T if self.spec.get("tie") else a[self.name("W")]

    def parameters(self, n, size):
        units = size(self.spec["units"])
        out = [] if self.spec.get("tie") else [Param(self.name("W"), (n, units), weight=True)]
        return out + ([Param(self.name("b"), (units, 1))] if self.spec["bias"] else []), units

    def forward(self, x, a):
        z = x @ self.weight(a) + (a[self.name("b")].T if self.spec["bias"] else 0.0)
        y = self.activate(z)
        return y, (x, z, y)

    mistakes = {"no σ′": "σ′ left out of δ (δ = ∂L/∂A where ∂L/∂A ⊙ σ′(Z) belongs)",
                "σ′(A)": "σ′ of the activation A where σ′ of the pre-activation Z belongs (σ′(A) for σ′(Z))",
                "W": "the weight not transposed in the backward pass (W where Wᵀ belongs, or Wᵀ for W)",
                "A out": "the layer's output A⁽ˡ⁾ where its input A⁽ˡ⁻¹⁾ belongs in ∂L/∂W⁽ˡ⁾"}

    def backward(self, saved, d, a, add, wrong):
        x, z, y = saved
        # δ = ∂L/∂Z = ∂L/∂A ⊙ σ′(Z); the mistakes: no σ′, σ′(A)
        dz = d if wrong == "no σ′" else self.through(y if wrong == "σ′(A)" else z, y, d)
        inputs = y if wrong == "A out" else x
        if self.spec.get("tie"):
            add(self.spec["tie"], (inputs.T @ dz).T)    # the shared weight: both uses add up
        else:
            add(self.name("W"), inputs.T @ dz)
        if self.spec["bias"]:
            add(self.name("b"), dz.sum(axis=0)[:, None])
        return dz @ (self.weight(a) if wrong == "W" else self.weight(a).T)

    def explicit(self, x, a):
        W = self.weight(a)
        z = x * W + (sp.ones(x.rows, 1) * a[self.name("b")].T if self.spec["bias"] else sp.zeros(x.rows, W.cols))
        return self.activate_exact(z)


class Residual(Block):
    """y = x + F(x), F the blocks inside."""

    kind = "residual"

    def __init__(self, spec):
        super().__init__(spec)
        self.inner = [build(b) for b in spec["layers"]]
        if any(b.backward is None for b in self.inner):
            self.backward = None

    def parameters(self, n, size):
        out = []
        for b in self.inner:
            params, n = b.parameters(n, size)
            out += params
        return out, n

    def forward(self, x, a):
        out, tape = forward(self.inner, x, a)
        return x + out, tape

    def backward(self, tape, d, a, add, wrong):
        return d + backward(tape, d, a, add, wrong)

    def explicit(self, x, a):
        return x + explicit(self.inner, x, a)

    def walk(self):
        yield self
        for b in self.inner:
            yield from b.walk()


class LayerNorm(Block):
    """x̂ = (x − μ)/√(σ² + ε), y = γ ⊙ x̂ + β per row (μ, σ² over its features)."""

    kind = "layer norm"
    axis = 1   # the axis the statistics run over: the features of each sample
    mistakes = {"mean terms": "layer norm without the mean and variance terms (dx = γ ⊙ dy / σ only)"}

    def parameters(self, n, size):
        return [Param(self.name("gamma"), (n, 1), centre=1.0, spread=0.3), Param(self.name("beta"), (n, 1))], n

    def forward(self, x, a):
        mu, var = x.mean(axis=self.axis, keepdims=True), x.var(axis=self.axis, keepdims=True)
        inv = 1 / np.sqrt(var + self.spec["eps"])
        xhat = (x - mu) * inv
        return xhat * a[self.name("gamma")].T + a[self.name("beta")].T, (xhat, inv)

    def backward(self, saved, d, a, add, wrong):
        xhat, inv = saved
        add(self.name("gamma"), (d * xhat).sum(axis=0)[:, None])
        add(self.name("beta"), d.sum(axis=0)[:, None])
        dxhat = d * a[self.name("gamma")].T
        if wrong:
            return dxhat * inv
        # dx = (1/σ)(dx̂ − mean(dx̂) − x̂ mean(dx̂ ⊙ x̂)), the means over the statistics' axis
        k = self.axis
        return inv * (dxhat - dxhat.mean(axis=k, keepdims=True) - xhat * (dxhat * xhat).mean(axis=k, keepdims=True))

    def explicit(self, x, a):
        eps, gamma, beta = sp.nsimplify(self.spec["eps"], rational=True), a[self.name("gamma")], a[self.name("beta")]
        x = x if self.axis == 1 else x.T   # the statistics run along each row of x
        rows = []
        for i in range(x.rows):   # (x − μ)/√(σ² + ε) along row i
            mu = sum(x.row(i)) / x.cols
            var = sum((v - mu) ** 2 for v in x.row(i)) / x.cols
            rows.append([(x[i, j] - mu) / sp.sqrt(var + eps) for j in range(x.cols)])
        xhat = sp.ImmutableMatrix(rows) if self.axis == 1 else sp.ImmutableMatrix(rows).T
        return sp.ImmutableMatrix(xhat.rows, xhat.cols, lambda i, j: xhat[i, j] * gamma[j] + beta[j])

    def constants(self):   # derive writes ε as a symbol epsilon<l>
        return {self.name("epsilon"): sp.nsimplify(self.spec["eps"], rational=True)}


class BatchNorm(LayerNorm):
    """x̂ = (x − μ)/√(σ² + ε), y = γ ⊙ x̂ + β per column: μ, σ² of each feature over the samples (training mode)."""

    kind = "batch norm"
    axis = 0
    mistakes = {"mean terms": "batch norm without the mean and variance terms (dx = γ ⊙ dy / σ only: the batch's "
                              "mean and variance taken as constants)"}


class Dropout(Block):
    """y = x ⊙ M/(1 − p), the mask M an input (0 or 1 per feature and sample)."""

    kind = "dropout"
    mistakes = {"no scale": "dropout's 1/(1 − p) left out of the backward pass (only the mask applied)"}

    def given(self, n):
        return {self.name("M"): n}

    def draw_input(self, shape, rng):
        """0 or 1, 1 with probability 1 − p."""
        return (rng.uniform(size=shape) >= self.spec["p"]).astype(np.float64)

    def forward(self, x, a):
        return x * a[self.name("M")] / (1 - self.spec["p"]), None

    def backward(self, saved, d, a, add, wrong):
        # dx = dy ⊙ M/(1 − p); the mistake: the mask alone
        return d * a[self.name("M")] if wrong else d * a[self.name("M")] / (1 - self.spec["p"])

    def explicit(self, x, a):
        keep = 1 - sp.nsimplify(self.spec["p"], rational=True)
        return sp.ImmutableMatrix(x.rows, x.cols, lambda i, j: x[i, j] * a[self.name("M")][i, j] / keep)

    def constants(self):   # derive writes p as a symbol p<l>
        return {self.name("p"): sp.nsimplify(self.spec["p"], rational=True)}


class SelfAttention(Block):
    """Per head P = softmax(Q_h K_hᵀ/√d), output concat(P V_h) W_o."""

    kind = "self-attention"
    mistakes = {"row sum": "attention without the softmax Jacobian's row-sum term (dS = P ⊙ dP only)"}

    def constants(self):   # derive writes d_k as a symbol d_k<l>
        return {self.name("d_k"): sp.Integer(self.spec["d_k"])}

    def parameters(self, n, size):
        width = self.spec["d_k"] * self.spec["heads"]
        return [*(Param(self.name(f"W{k}"), (n, width), weight=True) for k in "qkv"),
                Param(self.name("Wo"), (width, n), weight=True)], n

    def heads(self):
        dk = self.spec["d_k"]
        return [slice(h * dk, (h + 1) * dk) for h in range(self.spec["heads"])]

    def forward(self, x, a):
        Q, K, V = (x @ a[self.name(f"W{k}")] for k in "qkv")
        Ps, O = [], np.zeros_like(Q)
        for s in self.heads():
            P = _softmax_rows(Q[:, s] @ K[:, s].T / np.sqrt(self.spec["d_k"]), self.spec["causal"])
            O[:, s] = P @ V[:, s]
            Ps.append(P)
        return O @ a[self.name("Wo")], (x, Q, K, V, Ps, O)

    def backward(self, saved, d, a, add, wrong):
        x, Q, K, V, Ps, O = saved
        root = np.sqrt(self.spec["d_k"])
        add(self.name("Wo"), O.T @ d)
        dO = d @ a[self.name("Wo")].T
        dQ, dK, dV = np.zeros_like(Q), np.zeros_like(K), np.zeros_like(V)
        for s, P in zip(self.heads(), Ps):
            dP = dO[:, s] @ V[:, s].T
            dV[:, s] = P.T @ dO[:, s]
            dS = P * dP if wrong else P * (dP - np.sum(dP * P, axis=1, keepdims=True))
            dQ[:, s] = dS @ K[:, s] / root
            dK[:, s] = dS.T @ Q[:, s] / root
        for k, g in zip("qkv", (dQ, dK, dV)):
            add(self.name(f"W{k}"), x.T @ g)
        return sum(g @ a[self.name(f"W{k}")].T for k, g in zip("qkv", (dQ, dK, dV)))

    def explicit(self, x, a):
        Q, K, V = (x * a[self.name(f"W{k}")] for k in "qkv")
        O = sp.zeros(Q.rows, Q.cols)
        for c in self.heads():
            P = _softmax_rows_exact(Q[:, c] * K[:, c].T / sp.sqrt(self.spec["d_k"]), self.spec["causal"])
            O[:, c] = P * V[:, c]
        return O * a[self.name("Wo")]


class Convolution(Activated):
    """1-D convolution as im2col: row t of the patches is x[t·s + j − p] for j = 0 … w − 1, side by side;
    y = f(patches K + 1 bᵀ)."""

    kind = "convolution"
    mistakes = {"flipped": "the kernel flipped in ∂L/∂K (taps in reverse order: a convolution where the forward pass "
                           "is a correlation)"}

    def parameters(self, n, size):
        c = self.spec["channels"]
        return [Param(self.name("K"), (self.spec["width"] * n, c), weight=True), Param(self.name("b"), (c, 1))], c

    def samples(self, m):
        return (m + 2 * self.spec["padding"] - self.spec["width"]) // self.spec["stride"] + 1

    def _patches(self, x, stack, pad):
        w, s, p = self.spec["width"], self.spec["stride"], self.spec["padding"]
        padded = pad(x, p)
        return stack([[padded[t * s + j, c] for j in range(w) for c in range(x.shape[1])]
                      for t in range(self.samples(x.shape[0]))])

    def forward(self, x, a):
        patches = self._patches(x, np.array, lambda x, p: np.pad(x, ((p, p), (0, 0))))
        z = patches @ a[self.name("K")] + a[self.name("b")].T
        y = self.activate(z)
        return y, (x.shape, patches, z, y)

    def backward(self, saved, d, a, add, wrong):
        shape, patches, z, y = saved
        w, s, p = self.spec["width"], self.spec["stride"], self.spec["padding"]
        dz = self.through(z, y, d)
        dK = patches.T @ dz
        if wrong:
            c = shape[1]
            dK = np.concatenate([dK[j * c:(j + 1) * c] for j in reversed(range(w))])
        add(self.name("K"), dK)
        add(self.name("b"), dz.sum(axis=0)[:, None])
        dpatches = dz @ a[self.name("K")].T
        dpadded = np.zeros((shape[0] + 2 * p, shape[1]))
        for t in range(dz.shape[0]):
            dpadded[t * s:t * s + w] += dpatches[t].reshape(w, shape[1])
        return dpadded[p:p + shape[0]]

    def explicit(self, x, a):
        patches = self._patches(x, sp.Matrix, lambda x, p: sp.Matrix.vstack(sp.zeros(p, x.cols), x, sp.zeros(p, x.cols))
                                if p else x)
        return self.activate_exact(patches * a[self.name("K")] + sp.ones(patches.rows, 1) * a[self.name("b")].T)


class Recurrent(Activated):
    """Elman: H_t = f(H_{t−1} W_h + X_t W_x + 1 bᵀ), H_0 = 0, read by X1 … X_steps; backpropagation through time."""

    kind = "recurrent"
    mistakes = {"truncated": "backpropagation through time truncated to one step (only the last step's terms)"}

    def __init__(self, spec):
        super().__init__(spec)
        self.steps = spec["steps"]

    def parameters(self, n, size):
        h = size(self.spec["hidden"])
        return [Param(self.name("Wx"), (n, h), weight=True), Param(self.name("Wh"), (h, h), weight=True),
                Param(self.name("b"), (h, 1))], h

    def _z(self, H, x, a):
        return H @ a[self.name("Wh")] + x @ a[self.name("Wx")] + a[self.name("b")].T

    def forward(self, xs, a):
        H, Hs, Zs = np.zeros((xs[0].shape[0], a[self.name("Wh")].shape[0])), [], []
        for t, x in enumerate(xs):
            z = self._z(H, x, a)
            # the Gauss–Newton split of a last recurrent block is at the last step's Z
            H = z if self.spec.get("linear_output") and t == len(xs) - 1 else self.activate(z)
            Zs.append(z)
            Hs.append(H)
        return H, (xs, Hs, Zs)

    def backward(self, saved, d, a, add, wrong):
        xs, Hs, Zs = saved
        dH = d
        for t in reversed(range(len(xs))):
            dz = dH if self.spec.get("linear_output") and t == len(xs) - 1 else self.through(Zs[t], Hs[t], dH)
            add(self.name("Wx"), xs[t].T @ dz)
            add(self.name("b"), dz.sum(axis=0)[:, None])
            add(self.name("Wh"), Hs[t - 1].T @ dz if t > 0 else np.zeros_like(a[self.name("Wh")]))
            if wrong:
                break
            dH = dz @ a[self.name("Wh")].T
        return None

    def explicit(self, xs, a):
        H = sp.zeros(xs[0].rows, a[self.name("Wh")].rows)
        for x in xs:
            H = self.activate_exact(H * a[self.name("Wh")] + x * a[self.name("Wx")] +
                                    sp.ones(x.rows, 1) * a[self.name("b")].T)
        return H

    def linear(self):
        return None if self.act == "identity" else (Recurrent({**self.spec, "linear_output": True}), self)


class Embedding(Block):
    """y = rows idx of E, idx the token of each sample: x one-hot (each row a single 1) here; ∂L/∂E adds the rows of
    ∂L/∂y into the rows of their tokens."""

    kind = "embedding"
    mistakes = {"overwritten": "an embedding's gradient assigned per token, not added up (dE[idx] = dy: a token that "
                               "occurs twice keeps only one sample's gradient)"}

    def parameters(self, n, size):
        return [Param(self.name("E"), (n, size(self.spec["dim"])), weight=True, maps=False)], size(self.spec["dim"])

    def draw_input(self, shape, rng):
        """One-hot rows, the first two samples on one token (a gradient added up where a token repeats)."""
        m, vocab = shape
        idx = rng.integers(0, vocab, m)
        idx[1:2] = idx[0]
        return np.eye(vocab)[idx]

    def forward(self, x, a):
        idx = np.argmax(x, axis=1)
        return a[self.name("E")][idx], idx

    def backward(self, idx, d, a, add, wrong):
        dE = np.zeros_like(a[self.name("E")])
        if wrong:
            dE[idx] = d
        else:
            np.add.at(dE, idx, d)   # row i of d into row idx_i: repeated tokens add up
        add(self.name("E"), dE)
        return None

    def explicit(self, x, a):
        return x * a[self.name("E")]


class MaxPool(Block):
    """y[t] = max_j x[t·s + j] per channel; ∂L/∂x passes ∂L/∂y[t] to the first largest of its window."""

    kind = "max pool"
    mistakes = {"every tie": "a max pool's gradient passed to every largest entry of a window where two are equal "
                             "(the mask x = max, not the first of them)"}

    def stride(self):
        return self.spec["stride"] or self.spec["width"]

    def samples(self, m):
        return (m - self.spec["width"]) // self.stride() + 1

    def forward(self, x, a):
        w, s = self.spec["width"], self.stride()
        windows = np.stack([x[t * s:t * s + w] for t in range(self.samples(x.shape[0]))])   # T_out × w × c
        return windows.max(axis=1), (x.shape, windows)

    def backward(self, saved, d, a, add, wrong):
        (T, c), windows = saved
        w, s = self.spec["width"], self.stride()
        top = windows == windows.max(axis=1, keepdims=True)
        first = top if wrong else (np.cumsum(top, axis=1) == 1) & top   # ties: the first only
        dx = np.zeros((T, c))
        for t in range(d.shape[0]):
            dx[t * s:t * s + w] += first[t] * d[t]
        return dx


class Gated(Block):
    """A gated recurrent layer read by X1 … X_steps: per step each gate k's Z_k = X_t W_xk + H_{t−1} W_hk + 1 b_kᵀ
    (rows as samples), H_0 = 0; backpropagation through time."""

    gates = ""

    def __init__(self, spec):
        super().__init__(spec)
        self.steps = spec["steps"]

    def parameters(self, n, size):
        h = size(self.spec["hidden"])
        return [p for k in self.gates for p in (Param(self.name(f"Wx{k}"), (n, h), weight=True),
                                                Param(self.name(f"Wh{k}"), (h, h), weight=True),
                                                Param(self.name(f"b{k}"), (h, 1)))], h

    def w(self, a, kind, gate):
        return a[self.name(f"W{kind}{gate}")]

    def z(self, x, H, a, gate, recurrent=True):
        return x @ self.w(a, "x", gate) + (H @ self.w(a, "h", gate) if recurrent else 0.0) + a[self.name(f"b{gate}")].T

    def add_gate(self, add, x, H, dz, gate, a):
        """Gate `gate`'s gradients from dZ; what it passes back to H_{t−1}."""
        add(self.name(f"Wx{gate}"), x.T @ dz)
        add(self.name(f"Wh{gate}"), H.T @ dz)
        add(self.name(f"b{gate}"), dz.sum(axis=0)[:, None])
        return dz @ self.w(a, "h", gate).T

    def forward(self, xs, a):
        h = a[self.name(f"Wh{self.gates[0]}")].shape[0]
        state, tape = self.start(xs[0].shape[0], h), []
        for x in xs:
            state, saved = self.step(x, state, a)
            tape.append(saved)
        return state[0], (xs, tape)

    def backward(self, saved, d, a, add, wrong):
        xs, tape = saved
        carried = None
        for t in reversed(range(len(xs))):
            d, carried = self.back(xs[t], tape[t], d, carried, a, add, wrong)
        return None

    def explicit(self, xs, a):
        h = a[self.name(f"Wh{self.gates[0]}")].rows
        state = tuple(sp.zeros(xs[0].rows, h) for _ in range(2))
        for x in xs:
            state = self.step_exact(x, state, a)
        return state[0]

    @staticmethod
    def start(m, h):
        return np.zeros((m, h)), np.zeros((m, h))


def _sig(z):
    """σ(z) = 1/(1 + e^(−z)) entrywise."""
    return 1 / (1 + np.exp(-z))


def _sig_exact(M):
    """σ of each entry of an explicit SymPy matrix."""
    return M.applyfunc(exact.SCALAR["sigmoid"])


class GRU(Gated):
    """R = σ(Z_r), U = σ(Z_z), Ñ = tanh(X W_xn + R ⊙ (H W_hn) + 1 b_nᵀ), H' = (1 − U) ⊙ Ñ + U ⊙ H."""

    kind = "GRU"
    gates = "rzn"
    mistakes = {"direct path": "the GRU's direct path from H_t to H_{t−1} left out (dH_{t−1} without dH_t ⊙ U_t): "
                               "only the paths through the gates"}

    def step(self, x, state, a):
        H = state[0]
        R, U = _sig(self.z(x, H, a, "r")), _sig(self.z(x, H, a, "z"))
        hn = H @ self.w(a, "h", "n")
        N = np.tanh(self.z(x, H, a, "n", recurrent=False) + R * hn)
        return ((1 - U) * N + U * H, None), (H, R, U, hn, N)

    def back(self, x, saved, dH, carried, a, add, wrong):
        H, R, U, hn, N = saved
        # H' = (1 − U) ⊙ Ñ + U ⊙ H: dÑ = dH' ⊙ (1 − U), dU = dH' ⊙ (H − Ñ), and dH' ⊙ U straight to H
        dS = dH * (1 - U) * (1 - N ** 2)
        dZr = dS * hn * R * (1 - R)
        dZu = dH * (H - N) * U * (1 - U)
        back = 0.0 if wrong else dH * U
        back = back + self.add_gate(add, x, H, dZr, "r", a) + self.add_gate(add, x, H, dZu, "z", a)
        add(self.name("Wxn"), x.T @ dS)
        add(self.name("bn"), dS.sum(axis=0)[:, None])
        add(self.name("Whn"), H.T @ (dS * R))
        return back + (dS * R) @ self.w(a, "h", "n").T, None

    def step_exact(self, x, state, a):
        H = state[0]
        ones = sp.ones(x.rows, 1)
        z = {k: x * self.w(a, "x", k) + ones * a[self.name(f"b{k}")].T for k in self.gates}
        R, U = _sig_exact(z["r"] + H * self.w(a, "h", "r")), _sig_exact(z["z"] + H * self.w(a, "h", "z"))
        N = (z["n"] + R.multiply_elementwise(H * self.w(a, "h", "n"))).applyfunc(sp.tanh)
        return (U.applyfunc(lambda u: 1 - u).multiply_elementwise(N) + U.multiply_elementwise(H), None)


class LSTM(Gated):
    """I, F, O = σ(Z_i, Z_f, Z_o), G = tanh(Z_g), C' = F ⊙ C + I ⊙ G, H' = O ⊙ tanh(C'), H_0 = C_0 = 0."""

    kind = "LSTM"
    gates = "ifgo"
    mistakes = {"forget path": "the LSTM's path through the cell state left out (dC_{t−1} without dC_t ⊙ F_t): "
                               "the forget gate's path missing"}

    def step(self, x, state, a):
        H, C = state
        I, F, O = (_sig(self.z(x, H, a, k)) for k in "ifo")
        G = np.tanh(self.z(x, H, a, "g"))
        C2 = F * C + I * G
        T = np.tanh(C2)
        return (O * T, C2), (H, C, I, F, G, O, T)

    def back(self, x, saved, dH, dC, a, add, wrong):
        H, C, I, F, G, O, T = saved
        # H' = O ⊙ tanh(C'): dC' = dC'(carried) + dH' ⊙ O ⊙ (1 − tanh²C'); C' = F ⊙ C + I ⊙ G
        dC = (0.0 if dC is None else dC) + dH * O * (1 - T ** 2)
        dz = {"i": dC * G * I * (1 - I), "f": dC * C * F * (1 - F), "g": dC * I * (1 - G ** 2),
              "o": dH * T * O * (1 - O)}
        back = sum(self.add_gate(add, x, H, dz[k], k, a) for k in self.gates)
        return back, (0.0 * dC if wrong else dC * F)

    def step_exact(self, x, state, a):
        H, C = state
        ones = sp.ones(x.rows, 1)
        z = {k: x * self.w(a, "x", k) + H * self.w(a, "h", k) + ones * a[self.name(f"b{k}")].T for k in self.gates}
        I, F, O = (_sig_exact(z[k]) for k in "ifo")
        C2 = F.multiply_elementwise(C) + I.multiply_elementwise(z["g"].applyfunc(sp.tanh))
        return O.multiply_elementwise(C2.applyfunc(sp.tanh)), C2


KINDS = {cls.kind: cls for cls in (Dense, Residual, LayerNorm, SelfAttention, Convolution, Recurrent, BatchNorm,
                                    Dropout, GRU, LSTM, Embedding, MaxPool)}


def register_block(kind, cls):
    """Register `cls` (a Block subclass: parameters and forward; backward optional) as verify's class of `kind`."""
    if not (isinstance(cls, type) and issubclass(cls, Block)):
        raise TypeError(f"verify.register_block: {cls!r} is not a subclass of verify.blocks.Block")
    KINDS[kind] = cls
    return cls


def build(spec):
    """The verify class of a plain block specification, built; an unknown kind is a ValueError saying how to register
    one."""
    cls = KINDS.get(spec["kind"])
    if cls is None:
        raise ValueError(f"verify: no verify class for block kind {spec['kind']!r}; register one with "
                         f"verify.register_block({spec['kind']!r}, cls), cls a verify.blocks.Block subclass with "
                         f"parameters(n, size) and forward(x, a) (its gradient then by central differences)")
    return cls(spec)


def forward(blocks, x, a):
    tape = []
    for block in blocks:
        x, saved = block.forward(x, a)
        tape.append((block, saved))
    return x, tape


def _makes(block, wrong):
    """The key of the mistake `block` makes under `wrong`: a kind (its blocks make their first mistake) or (kind, key,
    index or None: every block of the kind); None for none."""
    kind, key, index = (wrong, next(iter(block.mistakes), None), None) if isinstance(wrong, str) else \
        (wrong or (None, None, None))
    return key if block.kind == kind and index in (None, block.index) else None


def backward(tape, d, a, add, wrong=None):
    """∂L/∂x of the blocks' input from ∂L/∂y of their output, every parameter's gradient given to add(name, g);
    the blocks `wrong` names (see _makes) make that mistake."""
    for block, saved in reversed(tape):
        d = block.backward(saved, d, a, add, _makes(block, wrong))
    return d


def explicit(blocks, x, a):
    for block in blocks:
        x = block.explicit(x, a)
    return x


class Reference:
    """A network of blocks from its plain specification: loss and gradients (by hand, or central differences where a
    block has no backward pass), rows as samples."""

    def __init__(self, spec):
        self.spec, self.layout = spec, spec["layout"]
        self.blocks = [build(b) for b in spec["blocks"]]
        self.all = [b for block in self.blocks for b in block.walk()]
        self.loss_function = _loss(spec["loss"])
        params, _ = self._parameters(lambda k: k)
        self.params = {p.name: p for p in params}
        self.by_hand = all(b.backward is not None for b in self.blocks)
        steps = self.blocks[0].steps if self.blocks else 0   # a recurrent, GRU or LSTM first block
        self.input_names = [f"X{t}" for t in range(1, steps + 1)] if steps else ["X"]
        self.given = {k: b for b, n, m in self.walk_sizes(lambda k: k) for k in b.given(n)}   # a mask's name -> block
        # an input drawn as the block that reads it draws it: a mask, or a first block's tokens
        self.drawn = {**({k: self.blocks[0] for k in self.input_names} if self.blocks and self.blocks[0].draw_input
                         else {}), **self.given}

    def walk_sizes(self, size, blocks=None, n=None, m=None):
        """(block, features in, rows in) of every block, those inside a residual too, in forward order."""
        blocks = self.blocks if blocks is None else blocks
        n = size(self.spec["inputs"]) if n is None else n
        m = size(self.spec["samples"]) if m is None else m
        for b in blocks:
            yield b, n, m
            yield from self.walk_sizes(size, getattr(b, "inner", ()), n, m)
            n, m = b.parameters(n, size)[1], b.samples(m)

    def _parameters(self, size):
        out, n = [], size(self.spec["inputs"])
        for b in self.blocks:
            params, n = b.parameters(n, size)
            out += params
        return out, n

    def shapes(self, dims):
        """{name: shape} of the inputs (X or X1 … XT), Y and every parameter, in the layout's own shapes, at the
        sizes `dims` ({size name: int})."""
        named = {str(k): v for k, v in dims.items()}

        def size(k):
            return int(named.get(str(k), k))
        params, n = self._parameters(size)
        m = size(self.spec["samples"])
        for b in self.blocks:
            m = b.samples(m)
        sample = (lambda n, m: (m, n)) if self.layout == "AW" else (lambda n, m: (n, m))
        m0 = size(self.spec["samples"])
        given = {k: sample(features, rows) for b, n_in, rows in self.walk_sizes(size)
                 for k, features in b.given(n_in).items()}
        return {**{k: sample(size(self.spec["inputs"]), m0) for k in self.input_names}, **given, "Y": sample(n, m),
                **{p.name: p.shape[::-1] if p.weight and p.maps and self.layout == "WA" else p.shape for p in params}}

    # --- orientation: rows are samples here; WA and WtA store them as columns, and WA's weights map columns
    def oriented(self, name, value):
        """The array as this module holds it, or back (the same transpose both ways)."""
        flip = (self.layout != "AW" and (name == "Y" or name in self.input_names or name in self.given)) or (
            self.layout == "WA" and name in self.params and self.params[name].weight and self.params[name].maps)
        return value.T if flip else value

    def inputs(self, arrays):
        """(every array as this module holds it, the network's input: X, or X1 … XT for a recurrent first block)."""
        a = {k: self.oriented(k, np.asarray(v, dtype=np.float64)) for k, v in arrays.items()}
        return a, [a[k] for k in self.input_names] if self.input_names != ["X"] else a["X"]

    def output(self, arrays, blocks=None):
        """(the network's output, the tape of its blocks, the arrays as held here)."""
        a, x = self.inputs(arrays)
        y, tape = forward(blocks or self.blocks, x, a)
        return y, tape, a

    def data(self, A, Y):
        """(the reduced data loss, ∂ of it by A) for the output A (rows are samples): the loss of the specification,
        written out by verify.recursion, or ℓ(a, y) of its SymPy function."""
        value, grad = data_loss(self.loss_function, A.T, Y.T)
        scale = 1 / A.shape[0] if self.spec["reduction"] == "mean" else 1.0
        return scale * float(value), scale * grad.T

    def decay(self, a):
        """(λ/2 Σ ‖W‖², {weight: λ W})."""
        lam = float(self.spec["weight_decay"])
        weights = [k for k, p in self.params.items() if p.weight and k in a] if lam else []
        return lam / 2 * sum(float(np.sum(a[k] ** 2)) for k in weights), {k: lam * a[k] for k in weights}

    def loss(self, arrays):
        out, _, a = self.output(arrays)
        return self.data(out, a["Y"])[0] + self.decay(a)[0]

    def run(self, arrays, mistake=None):
        """(loss, {parameter: gradient}) for the layout's arrays; `mistake`: the blocks that make a classic mistake in
        the backward pass (see _makes). Where a block has no backward pass, the gradient is central differences of
        the loss."""
        if not self.by_hand:
            values = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
            return self.loss(values), {k: central_difference(lambda **p: self.loss(p), values, k)
                                       for k in self.params if k in arrays}
        out, tape, a = self.output(arrays)
        loss, dout = self.data(out, a["Y"])
        penalty, grads = self.decay(a)
        backward(tape, dout, a, lambda name, g: grads.__setitem__(name, grads[name] + g if name in grads else g),
                 mistake)
        return loss + penalty, {k: self.oriented(k, grads[k]) for k in self.params if k in arrays}

    def draw(self, shapes, rng):
        """Random arrays: inputs and parameters normal (weights scaled by 1/√fan-in, γ near 1), Y valid for the
        loss."""
        arrays = {}
        for name, shape in shapes.items():
            p = self.params.get(name)
            if name == "Y":
                continue
            if name in self.drawn:
                own = self.oriented(name, np.empty(shape)).shape   # rows as samples
                arrays[name] = self.oriented(name, self.drawn[name].draw_input(own, rng))
                continue
            if p is not None and p.weight:
                arrays[name] = rng.normal(scale=1 / np.sqrt(max(shape)), size=shape) * 1.5
            else:
                arrays[name] = (p.centre if p else 0.0) + (p.spread if p else 1.0) * rng.normal(size=shape)
        Y = rng.uniform(0.05, 0.95, size=shapes["Y"])
        if self.loss_function == "softmax_ce":
            Y = Y / Y.sum(axis=1 if self.layout == "AW" else 0, keepdims=True)
        arrays["Y"] = Y
        return arrays

    def explicit_loss(self, env):
        """The loss as one SymPy expression in the entries of `env` (explicit matrices by name, in the layout's
        shapes): every block's forward pass written out entry by entry, rows as samples."""
        missing = sorted({b.kind for b in self.all if b.explicit is None})
        if missing:
            raise ValueError(f"verify: no SymPy forward pass (explicit) for {', '.join(missing)}: no exact proof")
        a = {k: self.oriented(k, v) for k, v in env.items()}
        x = [a[k] for k in self.input_names] if self.input_names != ["X"] else a["X"]
        out = explicit(self.blocks, x, a)
        data = exact.data_loss(self.loss_function, out.T, a["Y"].T)
        if self.spec["reduction"] == "mean":
            data = data / out.rows
        decay = sp.nsimplify(self.spec["weight_decay"], rational=True)
        return data + decay / 2 * sum(v ** 2 for k, p in self.params.items() if p.weight for v in env[k])

    def constants(self):
        return {k: v for b in self.all for k, v in b.constants().items()}


def loss_and_gradients(spec, arrays, mistake=None):
    """(L, {parameter: ∂L/∂parameter}) of a plain block specification at the layout's arrays (X or X1 … XT, Y and
    the parameters by name)."""
    return Reference(spec).run(arrays, mistake)


def mistaken(spec, arrays):
    """{mistake in words: gradients as that classic mistake gives them}: each mistake of the network's blocks made in
    every block of its kind, then in one block at a time, and the mean's 1/m left out (or put into a sum); a mistake
    the network's shapes do not allow (W for Wᵀ in a rectangular layer) is left out."""
    ref = Reference(spec)
    if not ref.by_hand:
        return {}
    makers = [b for b in ref.all if b.mistakes]
    choices = [(b.kind, key, None, text) for b in {b.kind: b for b in makers}.values() for key, text in b.mistakes.items()]
    choices += [(b.kind, key, b.index, f"{text}, in layer {b.index}") for b in makers for key, text in b.mistakes.items()
                if sum(c.kind == b.kind for c in makers) > 1]
    out = {}
    for kind, key, index, text in choices:
        try:
            out[text] = ref.run(arrays, (kind, key, index))[1]
        except ValueError:   # a product the shapes do not allow
            pass
    summed = {**spec, "reduction": "sum" if spec["reduction"] == "mean" else "mean"}
    out["the 1/m of the mean loss left out (the gradient of the sum)" if spec["reduction"] == "mean" else
        "a 1/m where the loss is a sum, not a mean"] = Reference(summed).run(arrays)[1]
    return out


def shapes(spec, dims):
    """{name: shape} of the inputs, Y and every parameter of a plain block specification at the sizes `dims`."""
    return Reference(spec).shapes(dims)


def draw(spec, shapes, rng):
    """Random arrays of the given shapes for a plain block specification (see Reference.draw)."""
    return Reference(spec).draw(shapes, rng)


def explicit_loss(spec, env):
    """The loss of a plain block specification as one SymPy expression in the entries of `env`."""
    return Reference(spec).explicit_loss(env)


def gauss_newton_split(spec):
    """The Gauss–Newton split in words: at the last block's activation's Z, or at the network's output A."""
    last = Reference(spec).blocks[-1].linear()
    return (f"split at Z of the last {last[1].kind} block's activation (H_L = ∂²L/∂Z²)" if last else
            "split at the network's output A (H_L = ∂²L/∂A², the loss's Hessian in A)")


def gauss_newton_product(spec, arrays, V, eps=1e-5):
    """{parameter: G v} with G = Jᵀ H_L J, split at the last block's activation's pre-activation Z where it has one
    (the network with that activation taken off has output Z), else at the network's output A: J v by central
    differences of that output, H_L (J v) by central differences of ∂L/∂(output), Jᵀ by the reference's backward pass
    from it; plus λ V for the weight decay."""
    ref = Reference(spec)
    split = ref.blocks[-1].linear()
    blocks = [*ref.blocks[:-1], split[0]] if split else ref.blocks

    def delta(z, Y):
        if split is None:
            return ref.data(z, Y)[1]
        y = split[1].activate(z)
        return split[1].through(z, y, ref.data(y, Y)[1])

    def output(values):
        return ref.output(values, blocks)

    plus = output({k: v + eps * V[k] if k in V else v for k, v in arrays.items()})[0]
    minus = output({k: v - eps * V[k] if k in V else v for k, v in arrays.items()})[0]
    Jv = (plus - minus) / (2 * eps)
    z, tape, a = output(arrays)
    u = (delta(z + eps * Jv, a["Y"]) - delta(z - eps * Jv, a["Y"])) / (2 * eps)
    if ref.by_hand:
        grads = {}
        backward(tape, u, a, lambda name, g: grads.__setitem__(name, grads[name] + g if name in grads else g))
        grads = {k: ref.oriented(k, grads[k]) for k in grads}
    else:   # Jᵀ u = ∇ ⟨output, u⟩, by central differences
        values = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
        grads = {k: central_difference(lambda **p: float(np.sum(output(p)[0] * u)), values, k) for k in V}
    lam = float(spec["weight_decay"])
    return {k: grads[k] + (lam * V[k] if ref.params[k].weight else 0.0) for k in ref.params if k in V}
