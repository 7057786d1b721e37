"""Hypothesis strategies for random network specifications (plain data: the keyword arguments of an mlp builder).

Nothing here knows a builder: the activations and losses to draw from are arguments, each loss with the output
activations it is defined for (None: any)."""
from hypothesis import strategies as st

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


@st.composite
def block_networks(draw, max_blocks=3, layouts=LAYOUTS):
    """{inputs, blocks, loss, layout, samples, reduction, weight_decay}: a random network of blocks as plain data
    (each block a dict with its kind and arguments), every kind drawn: dense, residual, layer norm, self-attention
    (heads, causal), convolution (width, stride, padding), recurrent (first only), tied dense."""
    n = draw(st.integers(2, 4))
    samples = first = draw(st.integers(3, 6))   # the time axis shrinks through each convolution
    blocks = []
    if draw(st.booleans()):
        blocks.append({"kind": "recurrent", "hidden": n, "steps": draw(st.integers(1, 3)),
                       "activation": draw(st.sampled_from(["tanh", "sigmoid"]))})
    kinds = ["dense", "residual", "layer norm", "self-attention", "convolution"]
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(kinds))
        if kind == "dense":
            blocks.append({"kind": kind, "units": n, "activation": draw(st.sampled_from(["tanh", "sigmoid", "identity"]))})
        elif kind == "residual":
            blocks.append({"kind": kind, "layers": [{"kind": "dense", "units": n + 1, "activation": "tanh"},
                                                    {"kind": "dense", "units": n, "activation": "identity"}]})
        elif kind == "layer norm":
            blocks.append({"kind": kind})
        elif kind == "self-attention":
            blocks.append({"kind": kind, "d_k": draw(st.integers(1, 3)), "heads": draw(st.integers(1, 2)),
                           "causal": draw(st.booleans())})
        else:
            width = draw(st.integers(1, 3))
            padding = draw(st.integers(0, width - 1))
            stride = draw(st.integers(1, 2))
            if (samples + 2 * padding - width) // stride + 1 < 2:
                stride = 1
            blocks.append({"kind": kind, "channels": n, "width": width, "stride": stride, "padding": padding,
                           "activation": draw(st.sampled_from(["tanh", "identity"]))})
            samples = (samples + 2 * padding - width) // stride + 1
    loss = draw(st.sampled_from(["half_sse", "mse", "softmax_ce"]))
    blocks.append({"kind": "dense", "units": 2, "activation": "softmax" if loss == "softmax_ce" else "identity",
                   "tie": None})
    return {"inputs": n, "blocks": blocks, "loss": loss, "layout": draw(st.sampled_from(list(layouts))),
            "samples": first, "reduction": draw(st.sampled_from(REDUCTIONS)),
            "weight_decay": draw(st.sampled_from([0, 0.25]))}
