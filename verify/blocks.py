"""An independent NumPy reference for networks of blocks (dense, residual, layer norm, self-attention, 1-D
convolution, recurrent), forward and backward written by hand from the textbook formulas; nothing from `derive`.

Rows are samples (tokens, time steps) inside this module: layouts WA and WtA are transposed on the way in and out
(and WA's weights, which map columns, too). Each block's backward pass can make a classic mistake on request
(MISTAKES), so that verify can say which one a user's code makes.
"""
import numpy as np

from .recursion import ACTIVATIONS, Custom, _activation

LOSSES = ("half_sse", "sse", "mse", "bce", "softmax_ce")
WEIGHTS = ("W", "Wq", "Wk", "Wv", "Wo", "Wx", "Wh", "K")   # the roles weight decay penalises
# the classic mistakes, by block: what a hand-written backward pass leaves out
MISTAKES = {"layer norm": "layer norm without the mean and variance terms (dx = γ ⊙ dy / σ only)",
            "self-attention": "attention without the softmax Jacobian's row-sum term (dS = P ⊙ dP only)",
            "recurrent": "backpropagation through time truncated to one step (only the last step's terms)",
            "convolution": "the kernel flipped in ∂L/∂K (taps in reverse order: a convolution where the forward pass "
                           "is a correlation)"}


def _role(name):
    return name.rstrip("0123456789")


def _act(block):
    """The block's activation: a name this module writes out, or a Custom from its SymPy function."""
    return _activation(block, block["index"])


def _f(act):
    return act.numpy() if isinstance(act, Custom) else ACTIVATIONS[act]


def _softmax_rows(z, causal=False):
    if causal:   # token i attends to tokens j ≤ i
        z = np.where(np.triu(np.ones(z.shape, dtype=bool), 1), -np.inf, z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Reference:
    """forward(inputs, params) and backward() for one plain block specification (a list of block dicts), rows as
    samples."""

    def __init__(self, spec):
        self.spec, self.layout = spec, spec["layout"]

    # --- orientation: rows are samples here; WA and WtA store them as columns, and WA's weights map columns
    def oriented(self, name, value):
        """The array as this module holds it, or back (the same transpose both ways)."""
        flip = (self.layout != "AW" and (name == "Y" or _role(name) == "X")) or (
            self.layout == "WA" and _role(name) in WEIGHTS)
        return value.T if flip else value

    # --- the network
    def run(self, arrays, mistake=None):
        """(loss, {parameter: gradient}) for the layout's arrays; `mistake`: a block kind whose classic mistake the
        backward pass makes."""
        a, inputs = self.inputs(arrays)
        self.mistake, self.grads = mistake, {}
        out, tape = self._forward(self.spec["blocks"], inputs, a)
        loss, dout = self._loss(out, a["Y"])
        decay = float(self.spec["weight_decay"])
        for k, v in a.items():
            if _role(k) in WEIGHTS and decay:
                loss += decay / 2 * float(np.sum(v * v))
                self.grads[k] = decay * v
        self._backward(tape, dout, a)
        return loss, {k: self.oriented(k, g) for k, g in self.grads.items() if k in arrays}

    def inputs(self, arrays):
        """(every array as this module holds it, the network's input: X, or X1 … XT for a recurrent first layer)."""
        a = {k: self.oriented(k, np.asarray(v, dtype=np.float64)) for k, v in arrays.items()}
        sequence = [a[k] for k in sorted((k for k in a if _role(k) == "X" and k != "X"), key=lambda k: int(k[1:]))]
        return a, sequence or a["X"]

    def _add(self, name, g):
        self.grads[name] = self.grads[name] + g if name in self.grads else g

    def _forward(self, blocks, x, a):
        tape = []
        for block in blocks:
            x, saved = getattr(self, "_f_" + block["kind"].replace(" ", "_").replace("-", "_"))(block, x, a)
            tape.append((block, saved))
        return x, tape

    def _backward(self, tape, d, a):
        for block, saved in reversed(tape):
            d = getattr(self, "_b_" + block["kind"].replace(" ", "_").replace("-", "_"))(block, saved, d, a)
        return d

    def _loss(self, A, Y):
        """(L, ∂L/∂A) for the output A (rows are samples)."""
        name, m = self.spec["loss"], A.shape[0]
        scale = 1 / m if self.spec["reduction"] == "mean" else 1.0
        if name in ("half_sse", "sse", "mse"):
            c = {"half_sse": 0.5, "sse": 1.0, "mse": 1.0 / A.shape[1]}[name]
            return scale * c * float(np.sum((A - Y) ** 2)), scale * 2 * c * (A - Y)
        if name == "bce":
            return (scale * float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))),
                    scale * ((A - Y) / (A * (1 - A))))
        if name == "softmax_ce":
            return scale * float(-np.sum(Y * np.log(A))), -scale * Y / A
        raise ValueError(f"verify: the block reference writes out the losses {', '.join(LOSSES)}, not {name!r}")

    # --- dense: Z = A W + 1 bᵀ, A' = f(Z)
    def _weight(self, block, a):
        return a[block["tie"]].T if block.get("tie") else a[f"W{block['index']}"]

    def _f_dense(self, block, x, a):
        l, act = block["index"], _act(block)
        z = x @ self._weight(block, a) + (a[f"b{l}"].T if block["bias"] else 0.0)
        y = _softmax_rows(z) if act == "softmax" else _f(act)[0](z)
        return y, (x, z, y)

    def _b_dense(self, block, saved, d, a):
        x, z, y = saved
        l, act = block["index"], _act(block)
        dz = y * (d - np.sum(d * y, axis=1, keepdims=True)) if act == "softmax" else d * _f(act)[1](z)
        dW = x.T @ dz
        if block.get("tie"):
            self._add(block["tie"], dW.T)    # the shared weight: both uses add up
        else:
            self._add(f"W{l}", dW)
        if block["bias"]:
            self._add(f"b{l}", dz.sum(axis=0)[:, None])
        return dz @ self._weight(block, a).T

    # --- residual: y = x + F(x)
    def _f_residual(self, block, x, a):
        out, tape = self._forward(block["layers"], x, a)
        return x + out, tape

    def _b_residual(self, block, tape, d, a):
        return d + self._backward(tape, d, a)

    # --- layer norm: x̂ = (x − μ)/√(σ² + ε), y = γ ⊙ x̂ + β per row
    def _f_layer_norm(self, block, x, a):
        l = block["index"]
        mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
        inv = 1 / np.sqrt(var + block["eps"])
        xhat = (x - mu) * inv
        return xhat * a[f"gamma{l}"].T + a[f"beta{l}"].T, (xhat, inv)

    def _b_layer_norm(self, block, saved, d, a):
        xhat, inv = saved
        l, n = block["index"], xhat.shape[1]
        self._add(f"gamma{l}", (d * xhat).sum(axis=0)[:, None])
        self._add(f"beta{l}", d.sum(axis=0)[:, None])
        dxhat = d * a[f"gamma{l}"].T
        if self.mistake == "layer norm":
            return dxhat * inv
        # dx = (1/σ)(dx̂ − mean(dx̂) − x̂ mean(dx̂ ⊙ x̂))
        return inv * (dxhat - dxhat.sum(axis=1, keepdims=True) / n - xhat * (dxhat * xhat).sum(axis=1, keepdims=True) / n)

    # --- self-attention: per head P = softmax(Q_h K_hᵀ/√d), output concat(P V_h) W_o
    def _f_self_attention(self, block, x, a):
        l, dk, heads = block["index"], block["d_k"], block["heads"]
        Q, K, V = (x @ a[f"W{k}{l}"] for k in "qkv")
        Ps, O = [], np.zeros_like(Q)
        for h in range(heads):
            s = slice(h * dk, (h + 1) * dk)
            P = _softmax_rows(Q[:, s] @ K[:, s].T / np.sqrt(dk), block["causal"])
            O[:, s] = P @ V[:, s]
            Ps.append(P)
        return O @ a[f"Wo{l}"], (x, Q, K, V, Ps, O)

    def _b_self_attention(self, block, saved, d, a):
        x, Q, K, V, Ps, O = saved
        l, dk = block["index"], block["d_k"]
        self._add(f"Wo{l}", O.T @ d)
        dO = d @ a[f"Wo{l}"].T
        dQ, dK, dV = np.zeros_like(Q), np.zeros_like(K), np.zeros_like(V)
        for h, P in enumerate(Ps):
            s = slice(h * dk, (h + 1) * dk)
            dP = dO[:, s] @ V[:, s].T
            dV[:, s] = P.T @ dO[:, s]
            dS = P * dP if self.mistake == "self-attention" else P * (dP - np.sum(dP * P, axis=1, keepdims=True))
            dQ[:, s] = dS @ K[:, s] / np.sqrt(dk)
            dK[:, s] = dS.T @ Q[:, s] / np.sqrt(dk)
        for k, g in zip("qkv", (dQ, dK, dV)):
            self._add(f"W{k}{l}", x.T @ g)
        return dQ @ a[f"Wq{l}"].T + dK @ a[f"Wk{l}"].T + dV @ a[f"Wv{l}"].T

    # --- 1-D convolution as im2col: row t of the patches is x[t·s + j − p] for j = 0 … w − 1, side by side
    def _f_convolution(self, block, x, a):
        l, w, s, p = block["index"], block["width"], block["stride"], block["padding"]
        padded = np.concatenate([np.zeros((p, x.shape[1])), x, np.zeros((p, x.shape[1]))])
        T_out = (padded.shape[0] - w) // s + 1
        patches = np.stack([padded[t * s:t * s + w].reshape(-1) for t in range(T_out)])
        z = patches @ a[f"K{l}"] + a[f"b{l}"].T
        act = _act(block)
        return _f(act)[0](z), (x.shape, patches, z)

    def _b_convolution(self, block, saved, d, a):
        shape, patches, z = saved
        l, w, s, p = block["index"], block["width"], block["stride"], block["padding"]
        dz = d * _f(_act(block))[1](z)
        dK = patches.T @ dz
        if self.mistake == "convolution":
            c = shape[1]
            dK = np.concatenate([dK[j * c:(j + 1) * c] for j in reversed(range(w))])
        self._add(f"K{l}", dK)
        self._add(f"b{l}", dz.sum(axis=0)[:, None])
        dpatches = dz @ a[f"K{l}"].T
        dpadded = np.zeros((shape[0] + 2 * p, shape[1]))
        for t in range(dz.shape[0]):
            dpadded[t * s:t * s + w] += dpatches[t].reshape(w, shape[1])
        return dpadded[p:p + shape[0]]

    # --- recurrent (Elman): H_t = f(H_{t−1} W_h + X_t W_x + 1 bᵀ), H_0 = 0; backpropagation through time
    def _f_recurrent(self, block, xs, a):
        l, act = block["index"], _act(block)
        H, Hs, Zs = np.zeros((xs[0].shape[0], a[f"Wh{l}"].shape[0])), [], []
        for x in xs:
            z = H @ a[f"Wh{l}"] + x @ a[f"Wx{l}"] + a[f"b{l}"].T
            H = _f(act)[0](z)
            Zs.append(z)
            Hs.append(H)
        return H, (xs, Hs, Zs)

    def _b_recurrent(self, block, saved, d, a):
        xs, Hs, Zs = saved
        l, act = block["index"], _act(block)
        dH = d
        for t in reversed(range(len(xs))):
            dz = dH * _f(act)[1](Zs[t])
            self._add(f"Wx{l}", xs[t].T @ dz)
            self._add(f"b{l}", dz.sum(axis=0)[:, None])
            if t > 0:
                self._add(f"Wh{l}", Hs[t - 1].T @ dz)
            if self.mistake == "recurrent":
                break
            dH = dz @ a[f"Wh{l}"].T
        self.grads.setdefault(f"Wh{l}", np.zeros_like(a[f"Wh{l}"]))
        return None


def gauss_newton_product(spec, arrays, V, eps=1e-5):
    """{parameter: G v} with G = Jᵀ H_L J split at the last dense block's pre-activation Z: J v by central differences
    of Z, H_L (J v) by central differences of ∂L/∂Z (the loss of that block's activation of Z), Jᵀ by the reference's
    backward pass from Z with the activation taken off; plus λ V for the weight decay."""
    last = spec["blocks"][-1]
    if last["kind"] != "dense":
        raise ValueError("verify: the Gauss–Newton product of blocks is split at a last dense block's "
                         f"pre-activation; this network ends with {last['kind']}")
    linear = {**spec, "blocks": [*spec["blocks"][:-1], {**last, "activation": "identity"}]}
    ref = Reference(linear)

    def output(values):
        a, inputs = ref.inputs(values)
        z, tape = ref._forward(linear["blocks"], inputs, a)
        return z, tape, a

    def delta(z, Y):
        # ∂L/∂Z through the last block's own activation
        act = _act(last)
        y = _softmax_rows(z) if act == "softmax" else _f(act)[0](z)
        d = Reference(spec)._loss(y, Y)[1]
        return y * (d - np.sum(d * y, axis=1, keepdims=True)) if act == "softmax" else d * _f(act)[1](z)

    plus = output({k: v + eps * V[k] if k in V else v for k, v in arrays.items()})[0]
    minus = output({k: v - eps * V[k] if k in V else v for k, v in arrays.items()})[0]
    Jv = (plus - minus) / (2 * eps)
    z, tape, a = output(arrays)
    u = (delta(z + eps * Jv, a["Y"]) - delta(z - eps * Jv, a["Y"])) / (2 * eps)
    ref.mistake, ref.grads = None, {}
    ref._backward(tape, u, a)
    decay = float(spec["weight_decay"])
    out = {k: ref.oriented(k, g) for k, g in ref.grads.items() if k in V}
    return {k: g + decay * V[k] if _role(k) in WEIGHTS and decay else g for k, g in out.items()}


def loss_and_gradients(spec, arrays, mistake=None):
    """(L, {parameter: ∂L/∂parameter}) of a plain block specification at the layout's arrays (X or X1 … XT, Y and
    the parameters by name)."""
    return Reference(spec).run(arrays, mistake)


def mistaken(spec, arrays):
    """{mistake: gradients as that classic mistake gives them}, for the mistakes the network's blocks can make."""
    kinds = set()

    def walk(blocks):
        for b in blocks:
            kinds.add(b["kind"])
            walk(b.get("layers", ()))
    walk(spec["blocks"])
    return {MISTAKES[k]: loss_and_gradients(spec, arrays, k)[1] for k in MISTAKES if k in kinds}


def shapes(spec, dims):
    """{name: shape} of the inputs (X or X1 … XT), Y and every parameter, in the layout's own shapes, at the sizes
    `dims` ({size name: int})."""
    def size(k):
        return int(dims.get(str(k), k))

    out, state = {}, {"n": size(spec["inputs"]), "m": size(spec["samples"])}
    WA = spec["layout"] == "WA"

    def weight(name, n_in, n_out):
        out[name] = (n_out, n_in) if WA else (n_in, n_out)

    def walk(blocks):
        for b in blocks:
            kind, l, n = b["kind"], b.get("index"), state["n"]
            if kind == "dense":
                units = size(b["units"])
                if not b.get("tie"):
                    weight(f"W{l}", n, units)
                if b["bias"]:
                    out[f"b{l}"] = (units, 1)
                state["n"] = units
            elif kind == "residual":
                walk(b["layers"])
            elif kind == "layer norm":
                out[f"gamma{l}"] = out[f"beta{l}"] = (n, 1)
            elif kind == "self-attention":
                width = b["d_k"] * b["heads"]
                for k in "qkv":
                    weight(f"W{k}{l}", n, width)
                weight(f"Wo{l}", width, n)
            elif kind == "convolution":
                weight(f"K{l}", b["width"] * n, b["channels"])
                out[f"b{l}"] = (b["channels"], 1)
                state["m"] = (state["m"] + 2 * b["padding"] - b["width"]) // b["stride"] + 1
                state["n"] = b["channels"]
            elif kind == "recurrent":
                hidden = size(b["hidden"])
                weight(f"Wx{l}", n, hidden)
                weight(f"Wh{l}", hidden, hidden)
                out[f"b{l}"] = (hidden, 1)
                state["inputs"] = b["steps"]
                state["n"] = hidden

    walk(spec["blocks"])
    n0, m0 = size(spec["inputs"]), size(spec["samples"])
    sample = (lambda n, m: (m, n)) if spec["layout"] == "AW" else (lambda n, m: (n, m))
    inputs = {f"X{t}": sample(n0, m0) for t in range(1, state["inputs"] + 1)} if "inputs" in state else \
        {"X": sample(n0, m0)}
    return {**inputs, "Y": sample(state["n"], state["m"]), **out}


def draw(spec, shapes, rng):
    """Random arrays: inputs and parameters normal (weights scaled by 1/√fan-in, γ near 1), Y valid for the loss."""
    arrays = {}
    for name, shape in shapes.items():
        role = _role(name)
        if name == "Y":
            continue
        if role == "gamma":
            arrays[name] = 1 + 0.3 * rng.normal(size=shape)
        elif role in WEIGHTS:
            arrays[name] = rng.normal(scale=1 / np.sqrt(max(shape)), size=shape) * 1.5
        else:
            arrays[name] = rng.normal(size=shape)
    Y = rng.uniform(0.05, 0.95, size=shapes["Y"])
    if spec["loss"] == "softmax_ce":
        axis = 1 if spec["layout"] == "AW" else 0
        Y = Y / Y.sum(axis=axis, keepdims=True)
    arrays["Y"] = Y
    return arrays


def _scalar(block):
    """σ of a block as a function of SymPy scalars."""
    from .exact import SCALAR

    act = _act(block)
    return SCALAR[act] if isinstance(act, str) else act.function


def _softmax_rows_exact(Z, causal=False):
    """softmax of each row of an explicit SymPy matrix (causal: over the entries j ≤ i, the others 0)."""
    import sympy as sp

    def entry(i, j):
        keep = range(i + 1) if causal else range(Z.cols)
        return sp.exp(Z[i, j]) / sum(sp.exp(Z[i, k]) for k in keep) if j in keep else sp.S.Zero
    return sp.ImmutableMatrix(Z.rows, Z.cols, entry)


def explicit_loss(spec, env):
    """The loss of a plain block specification as one SymPy expression in the entries of `env` (explicit matrices
    by name, in the layout's shapes): every block's forward pass written out entry by entry, rows as samples."""
    import sympy as sp

    ref = Reference(spec)
    a = {k: ref.oriented(k, v) for k, v in env.items()}

    def ones(rows):
        return sp.ones(rows, 1)

    def run(blocks, x):
        for b in blocks:
            kind, l = b["kind"], b.get("index")
            if kind == "residual":
                x = x + run(b["layers"], x)
            elif kind == "dense":
                W = a[b["tie"]].T if b.get("tie") else a[f"W{l}"]
                z = x * W + (ones(x.rows) * a[f"b{l}"].T if b["bias"] else sp.zeros(x.rows, W.cols))
                x = _softmax_rows_exact(z) if b["activation"] == "softmax" else z.applyfunc(_scalar(b))
            elif kind == "layer norm":
                eps, n = sp.nsimplify(b["eps"], rational=True), x.cols
                rows = []
                for i in range(x.rows):   # (x − μ)/√(σ² + ε) per row, then γ and β
                    mu = sum(x.row(i)) / n
                    var = sum((v - mu) ** 2 for v in x.row(i)) / n
                    rows.append([(x[i, j] - mu) / sp.sqrt(var + eps) * a[f"gamma{l}"][j] + a[f"beta{l}"][j]
                                 for j in range(n)])
                x = sp.ImmutableMatrix(rows)
            elif kind == "self-attention":
                dk = b["d_k"]
                Q, K, V = (x * a[f"W{k}{l}"] for k in "qkv")
                O = sp.zeros(Q.rows, Q.cols)
                for h in range(b["heads"]):
                    c = slice(h * dk, (h + 1) * dk)
                    P = _softmax_rows_exact(Q[:, c] * K[:, c].T / sp.sqrt(dk), b["causal"])
                    O[:, c] = P * V[:, c]
                x = O * a[f"Wo{l}"]
            elif kind == "convolution":
                w, s, p = b["width"], b["stride"], b["padding"]
                padded = sp.Matrix.vstack(sp.zeros(p, x.cols), x, sp.zeros(p, x.cols)) if p else x
                T_out = (padded.rows - w) // s + 1
                patches = sp.Matrix([[padded[t * s + j, c] for j in range(w) for c in range(x.cols)]
                                     for t in range(T_out)])
                x = (patches * a[f"K{l}"] + ones(T_out) * a[f"b{l}"].T).applyfunc(_scalar(b))
            elif kind == "recurrent":
                xs = [a[f"X{t}"] for t in range(1, b["steps"] + 1)]
                H = sp.zeros(xs[0].rows, a[f"Wh{l}"].rows)
                for X in xs:
                    H = (H * a[f"Wh{l}"] + X * a[f"Wx{l}"] + ones(X.rows) * a[f"b{l}"].T).applyfunc(_scalar(b))
                x = H
        return x

    out = run(spec["blocks"], a.get("X"))
    Y, name = a["Y"], spec["loss"]
    E = out - Y
    data = {"half_sse": lambda: sp.Rational(1, 2) * sum(e ** 2 for e in E), "sse": lambda: sum(e ** 2 for e in E),
            "mse": lambda: sum(e ** 2 for e in E) / out.cols,
            "bce": lambda: -sum(y * sp.log(v) + (1 - y) * sp.log(1 - v) for y, v in zip(Y, out)),
            "softmax_ce": lambda: -sum(y * sp.log(v) for y, v in zip(Y, out))}[name]()
    if spec["reduction"] == "mean":
        data = data / out.rows
    decay = sp.nsimplify(spec["weight_decay"], rational=True)
    return data + decay / 2 * sum(v ** 2 for k, M in env.items() if _role(k) in WEIGHTS for v in M)
