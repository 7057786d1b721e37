"""What a derivation's names mean: the symbols of a network of dense layers, or of a scalar expression; their shapes;
their values at random points (forward values with any of them moved, the loss), what each depends on, and the
true results (δ^(l), ∂L/∂W^(l), ∂L/∂A^(l)) by verify's closed-form recursion, independent of derive."""
import re

import numpy as np
import sympy as sp

from .. import data, recursion
from ..recursion import Spec, _softmax
from . import algebra
from .errors import NoSuchLayer
from .syntax import FUNCTIONS, Reader, Row

LOSS_WORDS = ("L", "J", "C", "E", "ℓ", "Loss", "loss", "cost")
NETWORK_WORDS = {"X": "X", "x": "X", "Y": "Y", "y": "Y", "t": "Y", "W": "W", "w": "W", "Θ": "W", "θ": "W",
                 "Theta": "W", "theta": "W", "b": "b", "Z": "Z", "z": "Z", "A": "A", "a": "A", "δ": "δ",
                 "delta": "δ", "λ": "λ", "lambda": "λ", "m": "m", **{w: "L" for w in LOSS_WORDS}}
LAYERED = ("W", "b", "Z", "A", "δ")
SIZES = (3, 4, 2, 5, 6, 7, 8, 9)     # symbolic sizes, each its own value (a transpose changes the shape)
DERIVATIVES = {"exp": (np.exp, np.exp), "log": (np.log, lambda x: 1 / x), "abs": (np.abs, np.sign),
               "tanh": recursion.ACTIVATIONS["tanh"], "relu": recursion.ACTIVATIONS["relu"],
               "sigmoid": recursion.ACTIVATIONS["sigmoid"], "softplus": recursion.ACTIVATIONS["softplus"],
               "leaky_relu": recursion.ACTIVATIONS["leaky_relu"]}
SUPER = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class Names:
    """word -> symbol base (None for a word that is no symbol), and the symbols in words for messages."""

    def __init__(self, table):
        self.table = table

    def __call__(self, word):
        return self.table.get(word)

    def known(self):
        return f" (symbols: {', '.join(sorted(set(self.table)))}; functions: {', '.join(sorted(set(FUNCTIONS)))})"


def _values(sizes):
    """{size symbol: int}: each symbolic size its own value from SIZES, avoiding the numeric sizes."""
    numeric = {int(s) for s in sizes if not isinstance(s, sp.Symbol)}
    free = [v for v in SIZES if v not in numeric] + [v for v in SIZES if v in numeric]
    symbols = list(dict.fromkeys(s for s in sizes if isinstance(s, sp.Symbol)))
    return {s: free[k % len(free)] for k, s in enumerate(symbols)}


class Meaning:
    """What both kinds share: sizes by name, and the value of a size."""

    dims: dict
    function: str
    function_text: str

    def size(self, text, error):
        text = text.strip().strip("{}() ")
        if re.fullmatch(r"\d+", text):
            return int(text)
        for s in self.dims:
            if str(s) == text or str(s).replace("_", "") == text.replace("_", "").replace("{", "").replace("}", ""):
                return s
        raise error(f"unknown length {text!r} of 𝟏; the sizes are {', '.join(map(str, self.dims)) or 'numbers'}")

    def value_of(self, s):
        return int(sp.sympify(s).xreplace(self.dims))


class NetworkMeaning(Meaning):
    """The symbols of a chain of dense layers (a derive Network or Backprop, or a plain specification): X = A^(0), Y,
    W^(l), b^(l), Z^(l), A^(l), δ^(l), the loss L, λ and m. `input_layer` 1 numbers layers as Ng and UFLDL do
    (a^(1) = x, z^(l+1) = W^(l) a^(l) + b^(l)); `names` adds words for symbols ({"Θ": "W"})."""

    function, function_text = "L", "L"

    def __init__(self, net, input_layer=0, names=None, weight_decay=0.1):
        if input_layer not in (0, 1):
            raise ValueError(f"input_layer = {input_layer!r}: 0 (A^(0) = X) or 1 (a^(1) = x, as Ng's notes)")
        try:
            self.spec = Spec.of(net, weight_decay=weight_decay)
        except ValueError as e:
            raise ValueError(f"a hand derivation is checked on a chain of dense layers (an MLP) or an expression: "
                             f"{str(e).removeprefix('verify: ')}") from None
        self.L, self.shift = len(self.spec.activations), input_layer
        self.samples = self.spec.samples
        self.dims = _values([self.samples, *self.spec.sizes])
        table = dict(NETWORK_WORDS)
        for word, base in (names or {}).items():
            if base not in {*NETWORK_WORDS.values()}:
                raise ValueError(f"names: {word!r} -> {base!r}: the symbols are "
                                 f"{', '.join(sorted(set(table.values())))}")
            table[word.removeprefix("\\")] = base
        self.sizes = {}   # id -> size symbol: the widths by name (n1, N_2, s3), the samples as m
        for symbol in self.dims:
            if symbol == self.samples:
                table[str(symbol)] = "m"
                continue
            prefix = re.match(r"[A-Za-z]+", str(symbol)).group()
            table.setdefault(prefix, "size:" + prefix)
            self.sizes[str(symbol).replace("_", "")] = symbol
        self.names = Names(table)
        ids = ["X", "Y", "L", "lambda", "m", *self.sizes]
        for l in range(1, self.L + 1):
            ids += [f"W{l}", *([f"b{l}"] if self.spec.has_bias(l) else []), f"Z{l}", f"A{l}", f"delta{l}"]
        self.ids = ids
        self.varies = [i for i in ids if not i.startswith("delta") and i not in ("lambda", "m")]
        self.differentiable = [i for i in self.varies if i not in ("L", "Y")]
        self.differentiable_text = [self.display(i) for i in self.differentiable]
        self.parents = {"L": [f"A{self.L}", "Y", *([f"W{l}" for l in range(1, self.L + 1)]
                                                   if self.spec.weight_decay else [])]}
        for l in range(1, self.L + 1):
            self.parents[f"Z{l}"] = [f"W{l}", *([f"b{l}"] if self.spec.has_bias(l) else []),
                                     "X" if l == 1 else f"A{l - 1}"]
            self.parents[f"A{l}"] = [f"Z{l}"]

    # names and shapes
    def resolve(self, base, layer, l, error):
        """The id of a symbol written `base` with `layer` (None, or (base, offset) with base "", "L" or "l")."""
        if base.startswith("size:"):
            ident = base[5:] + ("" if layer is None else str(self._index(layer, l)))
            if ident not in self.sizes:
                raise error(f"{ident}: not a size of this network ({', '.join(self.sizes)})")
            return ident
        if base not in LAYERED:
            if layer is not None and not (base == "X" and self._index(layer, l) == self.shift):
                raise error(f"{base} has no layer")
            return {"λ": "lambda"}.get(base, base)
        if layer is None:
            if self.L > 1:
                raise error(f"{base} needs a layer, {base}^(1) … {base}^({self.L + self.shift})")
            layer = ("", 1 + (self.shift if base in ("Z", "A", "δ") else 0))
        k = self._index(layer, l)
        if k is None:
            raise error("a generic layer l: give l a value (check the line at each l by writing it with l)")
        inner = k - self.shift if base in ("Z", "A", "δ") else k
        low = 0 if base == "A" else 1
        if not low <= inner <= self.L:
            if l is not None:
                raise error(NoSuchLayer)
            first, last = low + (self.shift if base in ("Z", "A", "δ") else 0), self.L + (
                self.shift if base in ("Z", "A", "δ") else 0)
            hint = "; counting the input as layer 1, as Ng does? check with input_layer=1 (--input-layer 1)" if (
                self.shift == 0 and k == last + 1) else ""
            raise error(f"{base}^({k}): this network's {base} are numbered {first} … {last}{hint}")
        if base == "A" and inner == 0:
            return "X"
        if base == "b" and not self.spec.has_bias(inner):
            raise error(f"layer {inner} has no bias")
        return {"δ": "delta"}.get(base, base) + str(inner)

    def _index(self, layer, l):
        base, offset = layer
        if base == "":
            return offset
        if base == "L":
            return self.L + self.shift + offset
        return None if l is None else l + offset

    def generic_layers(self):
        """The values a generic layer l takes: every layer of the network in its numbering."""
        return range(self.shift, self.L + self.shift + 1)

    def _rows(self, n):
        return [self.samples, n] if self.spec.layout == "AW" else [n, self.samples]

    def shape(self, ident):
        n = self.spec.sizes
        if ident in ("L", "lambda", "m") or ident in self.sizes:
            return None
        if ident == "X":
            return self._rows(n[0])
        if ident == "Y":
            return self._rows(n[-1])
        base, l = re.fullmatch(r"([A-Za-z]+)(\d+)", ident).groups()
        l = int(l)
        if base == "W":
            return [n[l], n[l - 1]] if self.spec.layout == "WA" else [n[l - 1], n[l]]
        if base == "b":
            return [n[l], 1]
        return self._rows(n[l])

    def display(self, ident):
        match = re.fullmatch(r"([A-Za-z]+)(\d+)", ident)
        if not match or ident in self.sizes:
            return {"lambda": "λ"}.get(ident, ident)
        base, l = match.groups()
        shown = int(l) + (self.shift if base in ("Z", "A", "delta") else 0)
        return {"delta": "δ"}.get(base, base) + f"⁽{str(shown).translate(SUPER)}⁾"

    def layer_of(self, ident):
        match = re.fullmatch(r"[A-Za-z]+(\d+)", ident or "")
        return int(match.group(1)) if match else None

    # activations
    def activation_of(self, node, prime, error):
        """σ of Z^(l) (or of A^(l): the classic σ′(A)) is layer l's activation σ_l, as the seeds write it, except
        that σ(Z^(l)) of a softplus layer is the logistic function (softplus′ = σ, as the documents write it); σ of
        anything else is the one activation every layer has."""
        if node.kind == "sym" and node.args[0][0] in "ZA" and node.args[0] not in ("A0",):
            k = self.layer_of(node.args[0])
            return "sigmoid" if not prime and self.spec.activations[k - 1] == "softplus" else ("layer", k)
        if len(set(map(str, self.spec.activations))) == 1:
            return ("layer", 1)
        raise error("σ of an expression in a network whose layers have different activations "
                    f"({', '.join(dict.fromkeys(map(str, self.spec.activations)))}): write σ(Z^(l)) or the function")

    def named_activation(self, name):
        return name

    def activation(self, key):
        """(f, f′) on arrays: a layer's activation (the softmax's f′ its diagonal s ⊙ (1 − s), per sample), or a
        function by name."""
        name = self.spec.activations[key[1] - 1] if isinstance(key, tuple) else key
        if name == "softmax":
            rows = self.spec.layout == "AW"
            f = (lambda z: _softmax(z.T).T) if rows else _softmax
            return f, lambda z: f(z) * (1 - f(z))
        return DERIVATIVES[name] if name in DERIVATIVES else recursion.activation(name)

    # values
    def draw(self, rng):
        X, Y, params = data.draw(self.spec, rng, self.dims)
        return {"X": X, "Y": Y, **params}

    def _columns(self, M):
        return M.T if self.spec.layout == "AW" else M

    def values(self, point, moved=None):
        """Every value at `point`, the forward pass recomputed after the values in `moved` ({id: array}: an input,
        a parameter, a Z^(l) or an A^(l)) are set."""
        moved = moved or {}
        point = {**point, **{k: v for k, v in moved.items() if k in point}}
        out = dict(point)
        V, b = recursion._weights(self.spec, point)
        A = self._columns(point["X"])
        for l in range(1, self.L + 1):
            Z = self._columns(moved[f"Z{l}"]) if f"Z{l}" in moved else V[l - 1] @ A + b[l - 1]
            f, _ = self.activation(("layer", l))
            A = self._columns(moved[f"A{l}"]) if f"A{l}" in moved else self._columns(f(self._columns(Z)))
            out[f"Z{l}"], out[f"A{l}"] = self._columns(Z), self._columns(A)
        Yc = self._columns(point["Y"])
        loss = recursion.data_loss(self.spec.loss, A, Yc)[0]
        if self.spec.reduction == "mean":
            loss = loss / Yc.shape[1]
        decay = sum(np.sum(point[f"W{l}"] ** 2) for l in range(1, self.L + 1))
        out["L"] = float(loss + self.spec.weight_decay / 2 * decay)
        out["lambda"], out["m"] = self.spec.weight_decay, Yc.shape[1]
        out.update({ident: self.dims[symbol] for ident, symbol in self.sizes.items()})
        return out

    def truths(self, point, values):
        """{id: ∂L/∂id} by the closed-form recursion: δ^(l) (∂L/∂Z^(l)), ∂L/∂A^(l), ∂L/∂X, ∂L/∂W^(l), ∂L/∂b^(l)."""
        Zs = [self._columns(values[f"Z{l}"]) for l in range(1, self.L + 1)]
        As = [self._columns(values["X"]), *(self._columns(values[f"A{l}"]) for l in range(1, self.L + 1))]
        deltas = {}
        recursion.backward(self.spec, Zs, As, point, recursion.output_delta(self.spec, Zs[-1], point["Y"]), deltas)
        out = recursion.gradients(self.spec, point["X"], point["Y"], point)
        V, _ = recursion._weights(self.spec, point)
        Yc = self._columns(point["Y"])
        scale = 1 / Yc.shape[1] if self.spec.reduction == "mean" else 1
        for l in range(1, self.L + 1):
            out[f"Z{l}"] = out[f"delta{l}"] = self._columns(deltas[l])
        for l in range(0, self.L + 1):
            adjoint = V[l].T @ deltas[l + 1] if l < self.L else scale * recursion.data_loss(
                self.spec.loss, As[-1], Yc)[1]
            out["X" if l == 0 else f"A{l}"] = self._columns(adjoint)
        return out

    def depends(self, a, b):
        """Whether the value `a` is computed from `b`."""
        return any(p == b or self.depends(p, b) for p in self.parents.get(a, ()))

    def activations_text(self):
        return ", ".join(map(str, self.spec.activations))


class ExpressionMeaning(Meaning):
    """The symbols of a scalar function f (text in the toolkit's syntax) of matrices and scalars: `where` gives each
    name's shape ((rows, cols) of integers or size names, None for a scalar)."""

    function, function_text = "f", "f"

    def __init__(self, f, where, wrt=None, names=None):
        if not isinstance(f, str):
            raise TypeError(f"f is the function as text (e.g. \"tr(A*X*B)\"), got {type(f).__name__}")
        self.shapes = {}
        for name, shape in where.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or name in ("f", "d", "L"):
                raise ValueError(f"where: {name!r} is not a symbol name (letters and digits; not f, d or L)")
            self.shapes[name] = None if shape is None else [
                int(s) if isinstance(s, int) or str(s).isdigit() else sp.Symbol(str(s), integer=True, positive=True)
                for s in shape]
        self.dims = _values([s for shape in self.shapes.values() if shape for s in shape])
        self.names = Names({**{n: n for n in self.shapes}, "f": "f", "L": "f", **(names or {})})
        self.ids = [*self.shapes, "f"]
        self.varies = list(self.ids)
        self.differentiable = [n for n in self.shapes if wrt is None or n == wrt or n in (wrt or ())]
        self.differentiable_text = self.differentiable
        typer = algebra.Typer(self, Row(0, 0, f))
        self.f = typer.finish(typer.type(Reader(Row(0, 0, f), self.names).sum()))
        if self.f.matrix:
            raise ValueError(f"f = {f} is a {algebra.shape_text(self.f.shape)} matrix, not a scalar")

    def resolve(self, base, layer, l, error):
        if layer is not None:
            raise error(f"{base} has no layer")
        return base

    def generic_layers(self):
        return [None]

    def shape(self, ident):
        return None if ident == "f" else self.shapes[ident]

    def display(self, ident):
        return ident

    def activation_of(self, node, prime, error):
        return "sigmoid"

    def named_activation(self, name):
        if name == "softmax":
            raise ValueError("softmax in an expression: write it with exp and sum")
        return name

    def activation(self, key):
        return DERIVATIVES[key]

    def draw(self, rng, tries=20):
        """Inputs at which f is finite: normal entries (+3I for a square matrix), then positive ones."""
        for k in range(tries):
            point = {}
            for name, shape in self.shapes.items():
                size = [self.value_of(s) for s in shape] if shape else []
                x = rng.normal(scale=0.5, size=size) if size else float(rng.normal(scale=0.5))
                if k >= tries // 2:
                    x = np.abs(x) + 0.5
                if size and size[0] == size[1]:
                    x = x + 3 * np.eye(size[0])
                point[name] = x
            with np.errstate(all="ignore"):
                try:
                    if np.isfinite(self.values(point)["f"]):
                        return point
                except (ValueError, np.linalg.LinAlgError):
                    continue
        raise ValueError("no point found where f is finite (normal and positive inputs tried)")

    def values(self, point, moved=None):
        out = {**point, **(moved or {})}
        out["f"] = float(algebra.evaluate(self.f, _Fixed(self, out)))
        return out

    def truths(self, point, values):
        """{name: ∂f/∂name}: five-point central differences of f, entry by entry."""
        out = {}
        for name in self.differentiable:
            x = np.asarray(point[name], dtype=float)
            G = np.zeros_like(x)
            for index in np.ndindex(*x.shape):
                def f(t, index=index):
                    y = x.copy()
                    y[index] += t
                    return self.values(point, {name: y if y.ndim else float(y)})["f"]
                G[index] = algebra.stencil(f)
            out[name] = G if G.ndim else float(G)
        return out

    def depends(self, a, b):
        return a == "f" and b != "f"


class _Fixed:
    """The values of f's symbols, for evaluating f itself (no differentials, no results)."""

    def __init__(self, meaning, values):
        self.meaning, self.values = meaning, values

    def __getitem__(self, ident):
        return self.values[ident]

    def size(self, s):
        return self.meaning.value_of(s)

    def activation(self, key):
        return self.meaning.activation(key)
