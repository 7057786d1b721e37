"""The seeds' results transcribed in each seed's own notation (tests/test_handwritten.py checks them), and each
classic mistake injected into them: (what is replaced, by what, the line of the first error, a phrase of its report)."""

SEEDS = {
    # seed 000 §6: the diagonal-matrix form, one sample, layers counted from A^(0) = x
    "seed000-4-layer-sigmoid": ({}, r"""
\begin{aligned}
\delta^{(L)} &= \operatorname{diag}(\sigma'(z^{(L)}))(a^{(L)} - y) \\
\delta^{(l)} &= \operatorname{diag}(\sigma'(z^{(l)}))(W^{(l+1)})^\top\delta^{(l+1)} \\
\frac{\partial L}{\partial W^{(l)}} &= \delta^{(l)}(a^{(l-1)})^\top
\end{aligned}""", [
        (r"\operatorname{diag}(\sigma'(z^{(L)}))(a^{(L)} - y)", "(a^{(L)} - y)", 3, "σ′(Z⁽⁴⁾) is missing"),
        (r"\sigma'(z^{(l)})", r"\sigma'(a^{(l)})", 4, "σ′(A"),
        (r"(W^{(l+1)})^\top\delta", r"W^{(l+1)}\delta", 4, "a transpose missing"),
        (r"\delta^{(l)}(a^{(l-1)})^\top", r"(a^{(l-1)})^\top\delta^{(l)}", 5, "other order"),
        (r"(a^{(L)} - y)", r"(y - a^{(L)})", 3, "the sign is flipped"),
    ]),
    # seed 000 §8: Andrew Ng's notes, a^(1) = x, Θ^(l) maps layer l to l + 1, cross-entropy
    "seed000-andrew-ng": ({"input_layer": 1}, """δ⁽⁴⁾ = a⁽⁴⁾ − y
δ⁽³⁾ = (Θ⁽³⁾)ᵀ δ⁽⁴⁾ .* g'(z⁽³⁾)
δ⁽²⁾ = (Θ⁽²⁾)ᵀ δ⁽³⁾ .* g'(z⁽²⁾)
∂J/∂Θ⁽ˡ⁾ = δ⁽ˡ⁺¹⁾ (a⁽ˡ⁾)ᵀ
""", [
        ("δ⁽⁴⁾ = a⁽⁴⁾ − y", "δ⁽⁴⁾ = (a⁽⁴⁾ − y) .* g'(z⁽⁴⁾)", 1, "σ′ cancels"),
        (".* g'(z⁽³⁾)", ".* g'(a⁽³⁾)", 2, "σ′(A⁽³⁾) where σ′(Z⁽³⁾) is meant"),
        (".* g'(z⁽²⁾)", "", 3, "σ′(Z⁽²⁾) is missing"),
        ("δ⁽ˡ⁺¹⁾ (a⁽ˡ⁾)ᵀ", "δ⁽ˡ⁾ (a⁽ˡ⁻¹⁾)ᵀ", 4, "one off"),
    ]),
    # seed 001: K samples as columns, W^(l) from layer l to l + 1, mean over K and weight decay
    "seed001-weight-decay": ({"input_layer": 1}, r"""Over the $K$ samples, with weight decay:
$$\delta^{(L)} = \frac{1}{K}(a^{(L)} - y) \odot f'(z^{(L)})$$
$$\delta^{(l)} = \left((W^{(l)})^\top \delta^{(l+1)}\right) \odot f'(z^{(l)})$$
$$\nabla_{W^{(l)}} J = \delta^{(l+1)} (a^{(l)})^\top + \lambda W^{(l)}$$
$$\nabla_{b^{(l)}} J = \delta^{(l+1)} \mathbf{1}$$
""", [
        (r"\frac{1}{K}(a^{(L)} - y)", r"(a^{(L)} - y)", 2, "the 1/m of the mean"),
        (r" + \lambda W^{(l)}", "", 4, "the weight-decay term λ"),
        (r"\delta^{(l+1)} \mathbf{1}", r"\delta^{(l+1)}", 5, "the sum over the samples is missing"),
    ]),
    # seed 003: the 1-1-1 network, C = (a^(L) − y)², the scalar chain rule
    "seed003-1-1-1": ({}, """∂C/∂w⁽ᴸ⁾ = a⁽ᴸ⁻¹⁾ σ'(z⁽ᴸ⁾) 2(a⁽ᴸ⁾ − y)
∂C/∂b⁽ᴸ⁾ = σ'(z⁽ᴸ⁾) 2(a⁽ᴸ⁾ − y)
∂C/∂a⁽ᴸ⁻¹⁾ = w⁽ᴸ⁾ σ'(z⁽ᴸ⁾) 2(a⁽ᴸ⁾ − y)
∂C/∂w⁽ᴸ⁻¹⁾ = a⁽ᴸ⁻²⁾ σ'(z⁽ᴸ⁻¹⁾) ∂C/∂a⁽ᴸ⁻¹⁾
""", [
        ("∂C/∂b⁽ᴸ⁾ = σ'(z⁽ᴸ⁾) 2(a⁽ᴸ⁾ − y)", "∂C/∂b⁽ᴸ⁾ = σ'(z⁽ᴸ⁾) (a⁽ᴸ⁾ − y)", 2, "a factor 2 missing"),
        ("a⁽ᴸ⁻²⁾ σ'(z⁽ᴸ⁻¹⁾)", "a⁽ᴸ⁻²⁾ σ'(a⁽ᴸ⁻¹⁾)", 4, "σ′(A⁽¹⁾) where σ′(Z⁽¹⁾) is meant"),
    ]),
    # seed 004: Z1 = W1ᵀ X + b1, binary cross-entropy summed over the batch, finished where the article stops
    "seed004-two-layer": ({}, r"""$$
\begin{aligned}
\frac{\partial L}{\partial Z_2} &= A_2 - Y \\
\mathrm{d}L &= \operatorname{tr}\left((A_2 - Y)^\top \mathrm{d}Z_2\right)
  = \operatorname{tr}\left((A_2 - Y)^\top W_2^\top \mathrm{d}A_1\right) \\
\frac{\partial L}{\partial W_2} &= A_1 (A_2 - Y)^\top \\
\frac{\partial L}{\partial A_1} &= W_2 (A_2 - Y) \\
\frac{\partial L}{\partial W_1} &= X \left(W_2 (A_2 - Y) \odot A_1 \odot (1 - A_1)\right)^\top
\end{aligned}
$$""", [
        (r"W_2^\top \mathrm{d}A_1", r"W_2 \mathrm{d}A_1", 5, "a transpose missing"),
        (r"= A_1 (A_2 - Y)^\top", r"= (A_2 - Y) A_1^\top", 6, "each other's shape"),
        (r"\odot A_1 \odot (1 - A_1)", "", 8, "σ′(Z⁽¹⁾) is missing"),
    ]),
}
