"""Dropout in training: the input times a mask M of zeros and ones, given on every call, scaled by 1/(1 − p)."""
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..core.expr import hadamard
from ..errors import InvalidArgument
from .blocks import Block, arg, register_block


@register_block
@dataclass(frozen=True)
class Dropout(Block):
    """A = X ⊙ M/(1 − p): M (the input `M<l>`, one entry per feature and sample, 0 or 1, drawn with P(1) = 1 − p by
    the caller and given on every call) keeps a feature of a sample or drops it; 1/(1 − p) keeps the mean."""

    key: ClassVar[str] = "dropout"
    kind: ClassVar[str] = "dropout"
    p: object = arg((int, float), "the probability that a feature is dropped", 0.5)

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        p = self.p
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p) or not 0 <= p < 1:
            raise InvalidArgument(f"{where}: p must be a number in [0, 1), got {p!r}")
        M = b.given_input("M", b.n, f"the dropout mask of layer {l}: 1 where a feature is kept, 0 where it is "
                                    f"dropped, given on every call")
        drop = b.constant("p", sp.nsimplify(float(p), rational=True))   # a symbol in the derivation, its value in code
        A_out = b.matrix(f"A{l}", b.n)
        definitions = ((A_out, hadamard(A, M) / (1 - drop)),)
        meanings = ((A_out, f"the output of layer {l}"),
                    (drop, f"the probability that a feature is dropped, {float(p):g}"))
        return b.built(self, l, f"Layer {l}: dropout", A, A_out, definitions, (), meanings)
