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
