"""Gated recurrent layers unrolled over their steps with shared weights: the GRU and the LSTM, each gate's
pre-activation named (its δ is the gate's δ), the gates' weights named by gate."""
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..core import registry
from ..core.expr import hadamard, matadd
from .blocks import MAX_COUNT, MAX_SIZE, SIZE, Block, activate, arg, bias, count, linear, register_block, size, \
    weight_shape

GATE_WORDS = {"r": "reset", "z": "update", "n": "candidate", "i": "input", "f": "forget", "g": "candidate",
              "o": "output"}


class Gated(Block):
    """A gated recurrent layer: per step t, each gate k's pre-activation Z_k,t = W_xk X_t + W_hk H_{t−1} + b_k 1ᵀ
    (step(b, t, Z, H, C) writes the rest), H_0 = 0 (and C_0 = 0); it reads the sequence X1 … XT, so it comes first,
    and passes H_T on."""

    gates: ClassVar[str] = ""
    idle_first: ClassVar[str] = ""   # gates the first step does not need (they multiply H_0 = 0 or C_0 = 0)

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        b.first_only(where, f"a {self.kind} layer")
        steps = count(self.steps, "steps", where)
        n_in, n = b.n, size(self.hidden, where)
        weights = {}
        for k in self.gates:
            gate = GATE_WORDS[k]
            weights[k] = (b.parameter(f"Wx{k}", weight_shape(b.layout, n_in, n), f"the {gate} gate's input weights of "
                                      f"layer {l}", fan_in=n),
                          b.parameter(f"Wh{k}", weight_shape(b.layout, n, n), f"the {gate} gate's recurrent weights "
                                      f"of layer {l}", fan_in=n),
                          b.parameter(f"b{k}", (n, 1), f"the {gate} gate's bias of layer {l}", decay=False,
                                      init="uniform", fan_in=n))
        b.inputs = tuple(b.matrix(f"X{t}", n_in) for t in range(1, steps + 1))
        definitions, meanings, state = [], [], (None, None)
        for t, X in enumerate(b.inputs, 1):
            H, C = state
            Z = {}
            for k in self.gates:
                if H is None and k in self.idle_first:
                    continue
                Wx, Wh, bk = weights[k]
                # Z_k,t = W_xk X_t + W_hk H_{t−1} + b_k 1ᵀ (no H term at t = 1: H_0 = 0), the GRU's candidate's
                # recurrent term under the reset gate (written by `step`)
                Z[k] = b.matrix(f"Z{k}{l}_{t}", n)
                recurrent = [linear(b.layout, Wh, H)] if H is not None and not self.reset_inside(k) else []
                definitions.append((Z[k], matadd(linear(b.layout, Wx, X), *recurrent, bias(b.layout, bk, b.m))))
                meanings.append((Z[k], f"the {GATE_WORDS[k]} gate's pre-activation at step {t}"))
            written, state = self.step(b, l, t, Z, H, C, weights)
            definitions += [(S, E) for S, E, _ in written]
            meanings += [(S, words) for S, _, words in written]
        b.n = n
        H = state[0]
        title = f"Layer {l}: {self.kind}, {steps} step{'s' if steps > 1 else ''}"
        return b.built(self, l, title, b.inputs[0], H, definitions, [P for k in self.gates for P in weights[k]],
                       meanings)

    def reset_inside(self, gate):
        """Whether the gate's recurrent term is written by `step` (the GRU's candidate, under the reset gate)."""
        return False


def sigma(b, Z):
    """σ(Z) entrywise: a gate."""
    return activate(registry.activation("sigmoid"), Z, b.layout)


def tanh(b, Z):
    """tanh(Z) entrywise: a candidate, or the squashed cell state."""
    return activate(registry.activation("tanh"), Z, b.layout)


@register_block
@dataclass(frozen=True)
class GRU(Gated):
    """A GRU layer: R_t = σ(Z_r,t), U_t = σ(Z_z,t), the candidate Ñ_t = tanh(W_xn X_t + R_t ⊙ (W_hn H_{t−1})
    + b_n 1ᵀ), H_t = (1 − U_t) ⊙ Ñ_t + U_t ⊙ H_{t−1}, H_0 = 0 (PyTorch's gates, one bias per gate)."""

    key: ClassVar[str] = "gru"
    kind: ClassVar[str] = "GRU"
    gates: ClassVar[str] = "rzn"
    idle_first: ClassVar[str] = "r"   # the reset gate multiplies W_hn H_0 = 0
    hidden: object = arg(SIZE, "the width of the hidden state", bounds=(1, MAX_SIZE))
    steps: int = arg(int, "the number of time steps", bounds=(1, MAX_COUNT))

    def reset_inside(self, gate):
        return gate == "n"

    def step(self, b, l, t, Z, H, C, weights):
        n = Z["z"].rows if b.layout != "AW" else Z["z"].cols
        R, U, N, H_t = (b.matrix(f"{k}{l}_{t}", n) for k in ("R", "U", "N", "H"))
        rows = [*([(R, sigma(b, Z["r"]), f"the reset gate at step {t}")] if H is not None else []),
                (U, sigma(b, Z["z"]), f"the update gate at step {t}")]
        if H is None:   # H_0 = 0: Ñ_1 = tanh(Z_n,1), H_1 = (1 − U_1) ⊙ Ñ_1
            rows += [(N, tanh(b, Z["n"]), f"the candidate state at step {t}"),
                     (H_t, hadamard(matadd(sp.OneMatrix(*U.shape), -U), N), f"the hidden state after step {t}")]
        else:
            Wh = weights["n"][1]
            S = b.matrix(f"S{l}_{t}", n)
            rows += [(S, matadd(Z["n"], hadamard(R, linear(b.layout, Wh, H))),
                      f"the candidate's pre-activation at step {t}"),
                     (N, tanh(b, S), f"the candidate state at step {t}"),
                     (H_t, matadd(hadamard(matadd(sp.OneMatrix(*U.shape), -U), N), hadamard(U, H)),
                      f"the hidden state after step {t}")]
        return rows, (H_t, None)


@register_block
@dataclass(frozen=True)
class LSTM(Gated):
    """An LSTM layer: I_t = σ(Z_i,t), F_t = σ(Z_f,t), G_t = tanh(Z_g,t), O_t = σ(Z_o,t), the cell
    C_t = F_t ⊙ C_{t−1} + I_t ⊙ G_t, T_t = tanh(C_t), H_t = O_t ⊙ T_t, H_0 = C_0 = 0 (PyTorch's gates, one bias per
    gate)."""

    key: ClassVar[str] = "lstm"
    kind: ClassVar[str] = "LSTM"
    gates: ClassVar[str] = "ifgo"
    idle_first: ClassVar[str] = "f"
    hidden: object = arg(SIZE, "the width of the hidden state", bounds=(1, MAX_SIZE))
    steps: int = arg(int, "the number of time steps", bounds=(1, MAX_COUNT))

    def step(self, b, l, t, Z, H, C, weights):
        n = Z["i"].rows if b.layout != "AW" else Z["i"].cols
        I, F, G, O, C_t, T, H_t = (b.matrix(f"{k}{l}_{t}", n) for k in ("I", "F", "G", "O", "C", "T", "H"))
        rows = [(I, sigma(b, Z["i"]), f"the input gate at step {t}"),
                *([(F, sigma(b, Z["f"]), f"the forget gate at step {t}")] if C is not None else []),   # C_0 = 0
                (G, tanh(b, Z["g"]), f"the candidate cell at step {t}"),
                (O, sigma(b, Z["o"]), f"the output gate at step {t}")]
        # C_t = F_t ⊙ C_{t−1} + I_t ⊙ G_t (C_0 = 0), T_t = tanh(C_t), H_t = O_t ⊙ T_t
        cell = hadamard(I, G) if C is None else matadd(hadamard(F, C), hadamard(I, G))
        rows += [(C_t, cell, f"the cell state after step {t}"),
                 (T, tanh(b, C_t), f"the cell state squashed, after step {t}"),
                 (H_t, hadamard(O, T), f"the hidden state after step {t}")]
        return rows, (H_t, C_t)
