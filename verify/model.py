"""The reference a network is checked against, one interface for every network: the closed-form recursion for a
chain of plain dense layers (verify.recursion), verify's block reference for any other (verify.blocks)."""
import numpy as np
import sympy as sp

from . import blocks, data, exact, recursion
from .recursion import Spec, dense_chain


def reference(plain, width=3, samples=3, weight_decay=0.1):
    """The Recursion or Blocks reference of a network's plain specification (a backprop's is read for its network;
    the old MLP format {sizes, layers, loss} too), symbolic sizes set to `width`, a symbolic number of samples to
    `samples`, a symbolic λ to `weight_decay`."""
    plain = plain.specification() if hasattr(plain, "specification") else plain
    if isinstance(plain, Spec):
        return Recursion(plain, width, samples, weight_decay)
    net = plain.get("network", plain)
    if "blocks" not in net or dense_chain(net):
        return Recursion(net, width, samples, weight_decay)
    return Blocks(net, width, samples, weight_decay)


class Recursion:
    """The closed-form recursion of a chain of plain dense layers."""

    check = "recursion"

    def __init__(self, net, width, samples, weight_decay):
        self.net, self.dims = net, data.dimensions(net, width, samples)
        self.scalars = data.scalars(net, weight_decay)
        self.spec = Spec.of(net, weight_decay=next(iter(self.scalars.values()), None))
        self.weight_decay, self.layout = self.spec.weight_decay, self.spec.layout
        self.notes = [f"inputs drawn with |Z| ≥ {data.MARGIN:g} at every relu-type unit (no kinks)"] \
            if any(a in data.KINKED for a in self.spec.activations) else []
        self.custom = any(isinstance(a, recursion.Custom) for a in self.spec.activations) or \
            not isinstance(self.spec.loss, str)

    def draw(self, rng, dtype=np.float64):
        """{X, Y, parameters}: random arrays in `dtype`, away from the kinks."""
        X, Y, params = data.draw(self.spec, rng, self.dims, dtype, self.spec)
        return {"X": X, "Y": Y, **params}

    def parameters(self, arrays):
        return {k: v for k, v in arrays.items() if k not in ("X", "Y")}

    def is_weight(self, name):
        return name.startswith("W")

    def samples(self, arrays):
        """(samples m, outputs n_L) of the drawn arrays."""
        Y = arrays["Y"]
        return Y.shape[::-1] if self.layout == "AW" else Y.shape

    def gradients(self, arrays):
        return recursion.gradients(self.spec, arrays["X"], arrays["Y"], self.parameters(arrays))

    def loss(self, arrays):
        return recursion.loss(self.spec, arrays["X"], arrays["Y"], self.parameters(arrays))

    def mistaken(self, arrays):
        """{mistake: gradients}: the dense layers' classic mistakes, from the block reference (a chain is a network of
        blocks); none for the old {sizes, layers} format."""
        return blocks.mistaken({**self.net, "weight_decay": self.weight_decay}, arrays) if "blocks" in self.net else {}

    def product(self, arrays, V, kind, eps, noise):
        from .second import network_product   # second order builds on the references
        return network_product(self.spec, arrays["X"], arrays["Y"], self.parameters(arrays), V, kind, eps, noise)

    def split(self):
        return "split at the output layer's Z (H_L = ∂²L/∂Z⁽ᴸ⁾²)"

    def exact_dimensions(self, samples):
        return data.dimensions(self.spec, width=2, samples=samples)

    def units(self, dims):
        """Σ_l n_l × m at the given sizes: what the cost of the exact proof grows with."""
        m = int(sp.sympify(self.spec.samples, strict=True).xreplace(dims))
        return sum(int(sp.sympify(n, strict=True).xreplace(dims)) for n in self.spec.sizes[1:]) * m

    def explicit(self, dims, decay=None):
        """(explicit symbol matrices by name, the parameters' names, the loss in their entries, the map of the
        constants derive writes as symbols)."""
        spec = Spec.of(self.net, weight_decay=0.0)
        env = {k: exact.symbol_matrix(k.lower() if k in ("X", "Y") else k, *s)
               for k, s in data.shapes(spec, dims).items()}
        params = {k: env[k] for k in env if k not in ("X", "Y")}
        loss = exact.explicit_loss(spec, env["X"], env["Y"], params, weight_decay=spec.decay)
        return env, list(params), loss, lambda E: E


class Blocks:
    """verify's block reference (every block's backward pass by hand, or central differences of its loss where a
    block has only a forward pass)."""

    def __init__(self, net, width, samples, weight_decay):
        decay = sp.sympify(net["weight_decay"], strict=True)
        self.scalars = {str(s): weight_decay for s in decay.free_symbols}   # a symbolic λ set to weight_decay
        self.weight_decay = float(decay.xreplace({s: sp.Float(weight_decay) for s in decay.free_symbols}))
        self.net, self.spec = net, {**net, "weight_decay": self.weight_decay}
        self.ref, self.layout = blocks.Reference(self.spec), net["layout"]
        self.dims = self._dimensions(width, samples)
        self.shapes = self.ref.shapes(self.dims)
        self.check = "reference" if self.ref.by_hand else None
        kinds = sorted({b.kind for b in self.ref.all if b.backward is None})
        self.notes = [] if self.ref.by_hand else [
            f"no backward pass written for {', '.join(kinds)}: the reference gradient is central differences of the "
            f"reference's loss (its forward passes)"]
        self.custom = isinstance(self.ref.loss_function, recursion.CustomLoss) or any(
            isinstance(getattr(b, "act", None), recursion.Custom) for b in self.ref.all)

    def _dimensions(self, width, samples):
        """{size symbol: int}: symbolic widths set to `width`, a symbolic number of samples to `samples`."""
        sizes = [self.net["inputs"], self.net["samples"],
                 *(b.spec[k] for b in self.ref.all for k in ("units", "hidden", "vocab", "dim") if k in b.spec)]
        symbols = {recursion._size(n) for n in sizes} - {n for n in sizes if not isinstance(n, (str, sp.Symbol))}
        samples_ = recursion._size(self.net["samples"])
        return {s: (samples if s == samples_ else width) for s in sorted(symbols, key=str) if isinstance(s, sp.Symbol)}

    def draw(self, rng, dtype=np.float64):
        return {k: v.astype(dtype) for k, v in self.ref.draw(self.shapes, rng).items()}

    def parameters(self, arrays):
        return {k: v for k, v in arrays.items() if k in self.ref.params}

    def is_weight(self, name):
        return self.ref.params[name].weight

    def samples(self, arrays):
        Y = arrays["Y"]
        return Y.shape[::-1] if self.layout == "AW" else Y.shape

    def gradients(self, arrays):
        return self.ref.run(arrays)[1]

    def loss(self, arrays):
        return self.ref.loss(arrays)

    def mistaken(self, arrays):
        return blocks.mistaken(self.spec, arrays)

    def product(self, arrays, V, kind, eps, noise):
        from .second import along   # second order builds on the references
        if kind == "hvp":
            return along(lambda a: self.ref.run(a)[1], arrays, V, eps, noise)
        return blocks.gauss_newton_product(self.spec, arrays, V, eps)

    def split(self):
        return blocks.gauss_newton_split(self.spec)

    def exact_dimensions(self, samples):
        return {k: samples if k == recursion._size(self.net["samples"]) else 2 for k in self.dims}

    def units(self, dims):
        """Σ over every block, those inside residuals too, of features × rows out (× steps) at the given sizes: what
        the cost of the exact proof grows with."""
        named = {str(k): v for k, v in dims.items()}
        size = lambda k: int(named.get(str(k), k))  # noqa: E731
        return sum(b.parameters(n, size)[1] * b.samples(m) * max(b.steps, 1) for b, n, m in self.ref.walk_sizes(size))

    def explicit(self, dims, decay=None):
        shapes = blocks.Reference({**self.net, "weight_decay": 0}).shapes(dims)
        env = {k: exact.symbol_matrix(k.lower() if k == "Y" or k in self.ref.input_names else k, *s)
               for k, s in shapes.items()}
        loss = blocks.Reference(self.net).explicit_loss(env)   # λ as given: exact, symbolic or not
        consts = self.ref.constants()
        return env, [k for k in shapes if k in self.ref.params], loss, \
            lambda E: E.xreplace({s: consts[s.name] for s in E.free_symbols if s.name in consts})
