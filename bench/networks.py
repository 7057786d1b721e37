"""Backprop derivation time against depth: derive.backprop(mlp) for depth 2 … 64, width 4.

Prints, per depth, the median time (3 runs) to build the network and derive every gradient, the
ratio to the previous depth (≈ 2 when the cost is linear in depth: depth doubles each row), the
number of recorded steps, the time to compile `result.numpy()`, and what SymPy's own
MatrixExpr.diff does with the same loss written out as one expression (its ∂L/∂W1).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from derive.core.expr import substitute  # noqa: E402
from _timing import timed  # noqa: E402

CONFIGS = {
    "sigmoid + half_sse, WA": dict(activation="sigmoid", loss="half_sse"),
    "relu/softmax + CE, AW": dict(activation="relu", output="softmax", loss="softmax_ce", layout="AW"),
}


def inline(net):
    """The loss with every named intermediate substituted: one SymPy expression, as SymPy's .diff needs it."""
    L = net.loss
    for Z in reversed(list(net.forward)):
        L = substitute(L, {Z: net.forward[Z]})
    return L


def main():
    print(f"{'network':<24} {'depth':>5} | {'derive ms':>10} {'ratio':>6} {'steps':>6} {'numpy() ms':>11} | "
          f"{'sympy .diff(W1)':>16}")
    print("-" * 92)
    for label, config in CONFIGS.items():
        previous = None
        for depth in (2, 4, 8, 16, 32, 64):
            result, t = timed(lambda: derive.backprop(derive.mlp([4] * (depth + 1), **config)))
            ratio = f"{t / previous:.1f}" if previous else ""
            previous = t
            _, tc = timed(result.numpy)
            if "softmax" in config.values():
                sympy_col = "(has no softmax)"
            elif depth <= 4:
                net = result.network
                _, ts = timed(lambda: inline(net).diff(net.parameters[0]), runs=1)
                sympy_col = f"{ts * 1e3:.0f} ms" if isinstance(ts, float) else ts
            else:
                sympy_col = "skipped"
            print(f"{label:<24} {depth:>5} | {t * 1e3:>10.1f} {ratio:>6} {len(result.steps):>6} {tc * 1e3:>11.1f} | "
                  f"{sympy_col:>16}")


if __name__ == "__main__":
    main()
