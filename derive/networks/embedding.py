"""An embedding: each sample a token of a vocabulary, given one-hot (or as its index), mapped to its row of E."""
from dataclasses import dataclass
from typing import ClassVar

from ..core.expr import OneHotColumns, OneHotRows, matmul, tp
from ..errors import InvalidArgument
from .blocks import MAX_SIZE, SIZE, Block, arg, register_block, size


@register_block
@dataclass(frozen=True)
class Embedding(Block):
    """A = Eᵀ X (samples as columns) or X E: X one-hot (each sample a single 1 at its token, vocab of them), E
    vocab × dim, row k the embedding of token k. It reads the network's inputs, so it comes first; code takes X as
    the token indices (or one-hot), gathers rows of E and scatter-adds ∂L/∂E."""

    key: ClassVar[str] = "embedding"
    kind: ClassVar[str] = "embedding"
    vocab: object = arg(SIZE, "the number of tokens (the network's inputs)", bounds=(1, MAX_SIZE))
    dim: object = arg(SIZE, "the width of each embedding", bounds=(1, MAX_SIZE))

    def build(self, b, A, last):
        l, where = b.layer(self.kind)
        b.first_only(where, "an embedding", "the network's one-hot inputs X")
        vocab, dim = size(self.vocab, where), size(self.dim, where)
        if vocab != b.n:
            raise InvalidArgument(f"{where}: vocab {vocab} must equal the network's inputs {b.n} (X is one-hot over "
                                  f"the vocabulary)")
        AW = b.layout == "AW"
        X = (OneHotRows("X", b.m, vocab) if AW else OneHotColumns("X", vocab, b.m))
        b.inputs = (X,)
        E = b.parameter("E", (vocab, dim), f"the embeddings of layer {l}, one row per token", decay=True,
                        init="uniform", fan_in=1)
        b.n = dim
        A_out = b.matrix(f"A{l}", dim)
        # A = X E: row i of A is row idx_i of E (Eᵀ X with samples as columns)
        definitions = ((A_out, matmul(X, E) if AW else matmul(tp(E), X)),)
        meanings = ((A_out, f"the embeddings of the samples' tokens (layer {l})"),)
        return b.built(self, l, f"Layer {l}: embedding of {vocab} tokens in {dim} dimensions", X, A_out, definitions,
                       (E,), meanings)
