"""Hypothesis strategies for random network specifications (plain data: the keyword arguments of an mlp builder).

Nothing here knows a builder: the activations and losses to draw from are arguments, each loss with the output
activations it is defined for (None: any)."""
try:
    from hypothesis import strategies as st
except ImportError:   # hypothesis is in the test extra
    raise ImportError("verify.strategies needs hypothesis: pip install 'matrix-backprop[test]'") from None

LAYOUTS = ("WA", "WtA", "AW")
REDUCTIONS = ("mean", "sum")


@st.composite
def mlp_specs(draw, activations, losses, outputs=None, max_depth=4, max_width=5, layouts=LAYOUTS, samples=(1, 3)):
    """{sizes, activation, output, loss, layout, bias, reduction, weight_decay, samples}: depth 1..max_depth, widths
    1..max_width; `activations` are the elementwise ones (hidden layers), `outputs` those allowed on the output layer
    as well (default: activations and softmax), `losses` maps a loss to its allowed outputs (None: any)."""
    activations = list(activations)
    outputs = list(outputs) if outputs is not None else [*activations, "softmax"]
    depth = draw(st.integers(1, max_depth))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    loss = draw(st.sampled_from(sorted(losses)))
    allowed = [a for a in outputs if losses[loss] is None or a in losses[loss]]
    if sizes[-1] == 1 and "softmax" in allowed:
        allowed.remove("softmax")  # softmax over one unit is the constant 1
    return dict(sizes=sizes, activation=[draw(st.sampled_from(activations)) for _ in range(depth - 1)],
                output=draw(st.sampled_from(allowed or ["sigmoid"])), loss=loss,
                layout=draw(st.sampled_from(list(layouts))), bias=draw(st.booleans()),
                reduction=draw(st.sampled_from(REDUCTIONS)), weight_decay=draw(st.sampled_from([0, 0.25])),
                samples=draw(st.sampled_from(list(samples))))


ENDINGS = ("dense", "residual", "layer norm", "self-attention", "convolution", "recurrent", "batch norm", "dropout",
           "GRU", "LSTM")
SEQUENCES = ("recurrent", "GRU", "LSTM")   # the blocks that read X1 … XT: first, or alone
# the losses a network may take after each output activation
LOSSES_AFTER = {"softmax": ["softmax_ce"], "sigmoid": ["half_sse", "mse", "bce", "softmax_ce"],
                "softplus": ["half_sse", "softmax_ce"], None: ["half_sse", "mse"]}


@st.composite
def block_networks(draw, max_blocks=3, layouts=LAYOUTS, ends=("dense",)):
    """{inputs, blocks, loss, layout, samples, reduction, weight_decay}: a random network of blocks as plain data
    (each block a dict with its kind and arguments), every kind drawn: dense, residual, layer norm, self-attention
    (heads, causal), convolution (width, stride, padding), batch norm, dropout (p), max pool (width, stride),
    recurrent, GRU, LSTM or embedding (first only), tied dense; the last block of a kind in `ends` (ENDINGS; a network
    that ends with a recurrent, GRU or LSTM layer is that layer alone), with a loss its output activation allows."""
    end = draw(st.sampled_from(list(ends))) if len(ends) > 1 else ends[0]
    n = draw(st.integers(2, 4))
    samples = first = draw(st.integers(3, 6))   # the time axis shrinks through each convolution
    blocks = []
    if end in SEQUENCES or draw(st.booleans()):
        kind = end if end in SEQUENCES else draw(st.sampled_from(SEQUENCES))
        blocks.append({"kind": kind, "hidden": n, "steps": draw(st.integers(1, 3))})
        if kind == "recurrent":
            blocks[-1]["activation"] = draw(st.sampled_from(["tanh", "sigmoid", *(["softplus"] * (end == kind))]))
    elif draw(st.booleans()):   # tokens of a vocabulary of n, one-hot
        blocks.append({"kind": "embedding", "vocab": n, "dim": n})
    kinds = ["dense", "residual", "layer norm", "self-attention", "convolution", "batch norm", "dropout", "max pool"]
    for _ in range(draw(st.integers(1, max_blocks)) if end not in SEQUENCES else 0):
        block, samples = _block(draw, draw(st.sampled_from(kinds)), n, samples)
        blocks.append(block)
    if end == "dense":
        loss = draw(st.sampled_from(["half_sse", "mse", "softmax_ce"]))
        blocks.append({"kind": "dense", "units": 2, "activation": "softmax" if loss == "softmax_ce" else "identity",
                       "tie": None})
    else:
        if end not in SEQUENCES:
            block, samples = _block(draw, end, n, samples, ["identity", "tanh", "sigmoid", "softplus", "relu"])
            blocks.append(block)
        loss = draw(st.sampled_from(LOSSES_AFTER.get(blocks[-1].get("activation"), LOSSES_AFTER[None])))
    return {"inputs": n, "blocks": blocks, "loss": loss, "layout": draw(st.sampled_from(list(layouts))),
            "samples": first, "reduction": draw(st.sampled_from(REDUCTIONS)),
            "weight_decay": draw(st.sampled_from([0, 0.25]))}


def _block(draw, kind, n, samples, convolutions=("tanh", "identity")):
    """(a block of `kind` on n features, the number of samples after it); a convolution's activation drawn from
    `convolutions`."""
    if kind == "dense":
        return {"kind": kind, "units": n, "activation": draw(st.sampled_from(["tanh", "sigmoid", "identity"]))}, samples
    if kind == "residual":
        return {"kind": kind, "layers": [{"kind": "dense", "units": n + 1, "activation": "tanh"},
                                         {"kind": "dense", "units": n, "activation": "identity"}]}, samples
    if kind == "layer norm" or (kind == "batch norm" and samples > 1):   # a batch norm needs two samples
        return {"kind": kind}, samples
    if kind in ("dropout", "batch norm"):
        return {"kind": "dropout", "p": draw(st.sampled_from([0.0, 0.25, 0.5]))}, samples
    if kind == "self-attention":
        return {"kind": kind, "d_k": draw(st.integers(1, 3)), "heads": draw(st.integers(1, 2)),
                "causal": samples > 1 and draw(st.booleans())}, samples   # a causal mask needs a token axis
    width = draw(st.integers(1, min(3, samples)))   # no wider than the samples left: at least one output
    if kind == "max pool":
        stride = draw(st.integers(1, 2))
        return {"kind": kind, "width": width, "stride": stride}, (samples - width) // stride + 1
    padding = draw(st.integers(0, width - 1))
    stride = draw(st.integers(1, 2))
    if (samples + 2 * padding - width) // stride + 1 < 2:
        stride = 1
    return ({"kind": kind, "channels": n, "width": width, "stride": stride, "padding": padding,
             "activation": draw(st.sampled_from(list(convolutions)))}, (samples + 2 * padding - width) // stride + 1)
