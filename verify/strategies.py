"""Hypothesis strategies for random networks (needs hypothesis and derive)."""
from hypothesis import strategies as st

LOSS_OUTPUTS = {"bce": ("sigmoid",), "softmax_ce": ("softmax", "sigmoid", "softplus")}


@st.composite
def networks(draw, max_depth=4, max_width=5, activations=None, losses=None, layouts=None, samples=(1, 3)):
    """A random derive.Network: depth 1..max_depth, widths 1..max_width, any activation, loss, layout,
    bias, reduction and weight decay that go together."""
    import derive

    activations = list(activations or [a for a in derive.ACTIVATIONS if a != "softmax"])
    depth = draw(st.integers(1, max_depth))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    loss = draw(st.sampled_from(list(losses or derive.LOSSES)))
    outputs = [a for a in (*activations, "softmax") if a in LOSS_OUTPUTS.get(loss, (*activations, "softmax"))]
    if sizes[-1] == 1 and "softmax" in outputs:
        outputs.remove("softmax")
    return derive.mlp(sizes, activation=[draw(st.sampled_from(activations)) for _ in range(depth - 1)],
                      output=draw(st.sampled_from(outputs or ["sigmoid"])), loss=loss,
                      layout=draw(st.sampled_from(list(layouts or derive.LAYOUTS))), bias=draw(st.booleans()),
                      reduction=draw(st.sampled_from(list(derive.REDUCTIONS))),
                      weight_decay=draw(st.sampled_from([0, 0.25])), samples=draw(st.sampled_from(list(samples))))
