"""Batch norm: each feature normalised over the samples of the batch (training mode), scaled by γ and shifted by β."""
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..core.expr import hadamard, hadamard_power, matadd, matmul
from ..errors import InvalidArgument
from .blocks import Block, arg, epsilon, register_block
from .textbook import VIEWS
from .views_attention import alike_norms


@register_block
@dataclass(frozen=True)
class BatchNorm(Block):
    """γ ⊙ (z − μ)/√(σ² + ε) + β per feature over the samples (μ, σ² the feature's mean and variance over the batch:
    training mode)."""

    key: ClassVar[str] = "batch_norm"
    kind: ClassVar[str] = "batch norm"
    eps: object = arg((int, float), "the constant ε added to the variance", 1e-5)

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        if b.m == 1:
            raise InvalidArgument(f"{where}: a batch norm normalises over the samples; this network has one (m = 1)")
        eps = b.constant("epsilon", epsilon(self.eps, where))
        n, m, AW = b.n, b.m, b.layout == "AW"
        gamma = b.parameter("gamma", (n, 1), f"the scale of layer {l}", decay=False, init="ones")
        beta = b.parameter("beta", (n, 1), f"the shift of layer {l}", decay=False)
        # one number per feature: a column n × 1 with samples as columns, a row 1 × n with samples as rows
        mu, v, s = (sp.MatrixSymbol(f"{k}{l}", *((1, n) if AW else (n, 1))) for k in ("mu", "v", "s"))
        C, N, A_out = (b.matrix(f"{k}{l}", n) for k in ("C", "N", "A"))

        def over_samples(M):   # each feature summed over the samples: 1ᵀ M (rows) or M 1 (columns)
            return matmul(sp.OneMatrix(1, m), M) if AW else matmul(M, sp.OneMatrix(m, 1))

        def spread(r):   # a statistic repeated for every sample: 1 r or r 1ᵀ
            return matmul(sp.OneMatrix(m, 1), r) if AW else matmul(r, sp.OneMatrix(1, m))

        # μ = (1/m) Z 1, C = Z − μ 1ᵀ, v = (1/m) C^∘2 1, s = (v + ε)^∘(−1/2), N = C ⊙ s 1ᵀ, A = N ⊙ γ 1ᵀ + β 1ᵀ
        definitions = ((mu, over_samples(A) / m), (C, matadd(A, -spread(mu))),
                       (v, over_samples(hadamard_power(C, 2)) / m),
                       (s, hadamard_power(matadd(v, eps * sp.OneMatrix(*v.shape)), sp.Rational(-1, 2))),
                       (N, hadamard(C, spread(s))),
                       (A_out, matadd(hadamard(N, b.every_sample(gamma)), b.every_sample(beta))))
        meanings = ((mu, "the mean of each feature over the samples"), (C, "the centred features"),
                    (v, "the variance of each feature over the samples"),
                    (s, "one over the standard deviation, per feature"),
                    (N, "the normalised features"), (A_out, f"the output of layer {l}"))
        return b.built(self, l, f"Layer {l}: batch norm", A, A_out, definitions, (gamma, beta), meanings)


VIEWS["batch norm"] = alike_norms   # alike batch norms derived once, the one derived ending with its compact form
