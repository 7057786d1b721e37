"""A recurrent layer derived once for a generic step t: its chains (from δ_t back), its forward pass and its symbols
written for step t, H_0 = 0 stated."""
from dataclasses import replace

import sympy as sp

from .textbook import VIEWS, View, definition_chain, layer_range


def generic(name, M):
    """A generic step's symbol `name` of M's shape."""
    return sp.MatrixSymbol(name, *M.shape)


def at(net, block, t):
    """{generic symbol: its symbol at step t}: Z_t, H_t, δ_t, X_t, and for t ≥ 2 those of step t − 1."""
    l = block.index
    (Z, delta), X, H = block.deltas[t - 1], net.inputs[t - 1], block.definitions[2 * t - 1][0]
    named = {generic(f"Z{l}_t", Z): Z, generic(f"delta{l}_t", delta): delta, generic("X_t", X): X,
             generic(f"H{l}_t", H): H}
    if t > 1:
        (Z0, delta0), H0 = block.deltas[t - 2], block.definitions[2 * t - 3][0]
        named.update({generic(f"Z{l}_t-1", Z0): Z0, generic(f"delta{l}_t-1", delta0): delta0,
                      generic(f"H{l}_t-1", H0): H0})
    return named


def generic_steps(net, block, chains):
    """`chains` with the chains of a recurrent layer's steps (from δ_t back, t = T, …, 1) replaced by one for a
    generic step t: Z_t = W_h H_{t−1} + W_x X_t + b 1ᵀ, H_{t−1} = f(Z_{t−1}), H_0 = 0; it reads off δ_{t−1} (for
    t ≥ 2), each parameter's contribution at step t and, as Σ_t of them, the parameters' gradients."""
    l, T = block.index, len(block.deltas)
    Wx, Wh, b = block.parameters
    concrete = {Z for Z, _ in block.deltas}
    mine = [c for c in chains if c.via in concrete]
    if T < 2 and len(mine) == 1:   # one step: W_h multiplies H_0 = 0 only, so ∂L/∂W_h = 0, said where it is read off
        H0 = sp.MatrixSymbol(f"H{l}_0", *block.deltas[0][0].shape)
        one = replace(mine[0], results=(*mine[0].results, (Wh, sp.ZeroMatrix(*Wh.shape), "gradient")),
                      note=("with ", H0, " = 0, the one step has no term in ", Wh))
        return [one if c is mine[0] else c for c in chains]
    if T < 2 or len(mine) != T:
        return chains
    back = {v: k for k, v in at(net, block, 2).items()}   # step 2 written for a generic t
    Z, delta = back[block.deltas[1][0]], back[block.deltas[1][1]]
    Z0, H0 = back[block.deltas[0][0]], back[block.definitions[1][0]]
    forward = {Z: net.forward[block.deltas[1][0]].xreplace(back), H0: net.forward[block.definitions[1][0]].xreplace(
        back)}
    view = View(forward, {Z: delta, Z0: back[block.deltas[0][1]]}, block.parameters)
    chain, adjoint = definition_chain(view, Z, delta, (block.title + ": from ", delta, " back, at a step t"))
    results = [(view.deltas[Z0], adjoint[Z0], "delta")]
    results += [(P, adjoint[P], "gradient contribution") for P in (Wx, Wh, b)]
    wholes = {s: E for c in mine for s, E, kind in c.results if kind == "gradient"}
    results += [(P, wholes[P], "gradient") for P in (Wx, Wh, b)]
    sums = tuple((P, adjoint[P], "t", 2 if P is Wh else 1, T) for P in (Wx, Wh, b))
    one = replace(chain, results=tuple(results), instances=tuple(at(net, block, t) for t in range(T, 0, -1)),
                  sums=sums, where=f"for t = {layer_range(T, down=True)}",
                  delta_where=f"for t = {', '.join(map(str, range(T, 1, -1))) if T <= 4 else f'{T}, …, 2'}",
                  note=("with ", sp.MatrixSymbol(f"H{l}_0", *H0.shape), " = 0 the term in ", Wh, " vanishes at t = 1, "
                        "so its sum starts at t = 2, and there is no ", view.deltas[Z0], " at t = 1; ", H0,
                        " is read by ", Z, " alone, so the chain reads off the whole ", view.deltas[Z0], "; ",
                        block.deltas[-1][1], " comes from the layer above"))
    k = chains.index(mine[0])
    return [*chains[:k], one, *[c for c in chains[k:] if c not in mine]]


def presented(net, block):
    """(the concrete symbols it stands for, {concrete symbol: the generic symbol rows (symbol, meaning) in its
    place}, {concrete symbol: the generic forward rows (lhs, rhs, note) in its place}): the inputs, Z_t, H_t and δ_t
    once for a generic step t, H_0 = 0 stated."""
    l, T = block.index, len(block.deltas)
    if T < 2:
        return None
    back = {v: k for k, v in at(net, block, 2).items()}
    (Z, delta), H = block.deltas[1], block.definitions[3][0]
    Zt, Ht, Xt, dt = back[Z], back[H], back[net.inputs[1]], back[delta]
    steps = f"t = {layer_range(T)}"
    first = block.deltas[0][0]
    symbols = {net.inputs[0]: [(Xt, f"the inputs at step t, one sample per {'row' if net.layout == 'AW' else 'column'}"
                                    f" ({steps})")],
               first: [(Zt, f"the pre-activations of layer {l} at step t"),
                       (Ht, f"the hidden state of layer {l} after step t; H₀ = 0, the state before the first step"),
                       (dt, "the error at step t: the gradient of L with respect to the pre-activations at step t")]}
    forward = {first: [(Zt, net.forward[Z].xreplace(back), f"for {steps}, with H₀ = 0"),
                       (Ht, net.forward[H].xreplace(back), "")]}
    covered = {*net.inputs, *(Z for Z, _ in block.definitions)}
    return covered, symbols, forward


VIEWS["recurrent"] = generic_steps
