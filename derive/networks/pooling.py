"""Max pooling over the samples (time) axis: each output step the largest of `width` input steps, per channel."""
from dataclasses import dataclass, replace
from typing import ClassVar

import sympy as sp

from ..core.expr import Select, hadamard, matadd, matmul, tp
from ..core.functions import FirstMax
from ..errors import InvalidArgument
from .blocks import MAX_COUNT, MAX_SIZE, Block, arg, count, register_block


@register_block
@dataclass(frozen=True)
class MaxPool1D(Block):
    """A[t] = max_j X[t·stride + j] per channel, j = 0 … width − 1, written A = Σ_j M_j ⊙ (S_j X) with S_j the
    constant selection of steps t·stride + j and M_j the argmax mask (1 where tap j is the first largest: ties to
    the first), which is piecewise constant: δ of X is Σ_j S_jᵀ (M_j ⊙ δ_A)."""

    key: ClassVar[str] = "maxpool1d"
    kind: ClassVar[str] = "max pool"
    width: int = arg(int, "the number of steps each output takes the largest of", bounds=(1, MAX_COUNT))
    stride: int = arg(int, "the step between outputs", None, bounds=(1, MAX_SIZE))

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        width = count(self.width, "width", where)
        stride = width if self.stride is None else count(self.stride, "stride", where)
        if not isinstance(b.m, sp.Integer):
            raise InvalidArgument(f"{where}: a max pool over the samples (time) axis needs their number: pass "
                                  f"samples=<int> (got {b.m})")
        T = int(b.m)
        T_out = (T - width) // stride + 1
        if T_out < 1:
            raise InvalidArgument(f"{where}: width {width} is longer than the {T} time steps")
        AW = b.layout == "AW"
        taps, meanings = [], {}
        for j in range(width):
            # tap j: S_j X, the steps t·stride + j (X S_jᵀ with samples as columns)
            S = Select(f"S{l}_{j}", T, j, T_out, stride)
            meanings[S] = f"selects the time steps t·{stride} + {j} of the input for output step t"
            taps.append(matmul(S, A) if AW else matmul(A, tp(S)))
        b.m = sp.Integer(T_out)
        masks = [b.matrix(f"M{l}_{j}", b.n) for j in range(width)]
        A_out = b.matrix(f"A{l}", b.n)
        definitions = [(M, FirstMax(j, *taps)) for j, M in enumerate(masks)]
        definitions.append((A_out, matadd(*(hadamard(M, t) for M, t in zip(masks, taps)))))
        meanings.update({M: f"1 where tap {j} is the largest (the first of equal ones), else 0"
                         for j, M in enumerate(masks)})
        meanings[A_out] = f"the output of layer {l}: the largest of each {width} steps"
        title = f"Layer {l}: max pool, width {width}" + (f", stride {stride}" if stride != width else "")
        # a δ at the output only: the masks are piecewise constant, nothing passes back through them
        built = b.built(self, l, title, A, A_out, definitions, (), meanings.items())
        return replace(built, deltas=built.deltas[-1:])
