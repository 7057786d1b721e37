"""Derivation time and result size against depth, for derive.gradient and SymPy's MatrixExpr.diff.

Prints a table: for chains of k matrix products and of k elementwise layers, the median derivation
time over 3 runs and the result size (distinct sub-expressions), and the same for SymPy's .diff
where it succeeds within 20 s. Growth, not absolute speed, is the point: ratios t(2k)/t(k) near 2
mean linear cost.
"""
import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from derive.core.expr import postorder  # noqa: E402
from _timing import timed  # noqa: E402

n = sp.Symbol("n", integer=True, positive=True)
X = sp.MatrixSymbol("X", n, n)


def products(k):
    """tr(A1 A2 ⋯ Ak X)."""
    return sp.Trace(sp.MatMul(*[sp.MatrixSymbol(f"A{i}", n, n) for i in range(1, k + 1)], X))


def layers(k):
    """1ᵀ tanh(Wk ⋯ tanh(W1 X)) 1: k elementwise layers, built unevaluated."""
    H = X
    for i in range(1, k + 1):
        H = sp.MatMul(sp.MatrixSymbol(f"W{i}", n, n), H).applyfunc(sp.tanh)
    return sp.MatMul(sp.OneMatrix(1, n), H, sp.OneMatrix(n, 1))


def where_chain(k):
    """tr(Z_k) with Z_i := tanh(Z_{i−1}) named intermediates, Z_0 = X: (f, where)."""
    Z = [X] + [sp.MatrixSymbol(f"Z{i}", n, n) for i in range(1, k + 1)]
    return sp.Trace(Z[-1]), {Z[i]: Z[i - 1].applyfunc(sp.tanh) for i in range(1, k + 1)}


def size(expr):
    return len(postorder(expr, lambda e: () if isinstance(e, (sp.MatrixSymbol, sp.Lambda)) else e.args))


def main():
    print(f"{'family':<9} {'k':>3} | {'derive ms':>10} {'ratio':>6} {'size':>6} | {'sympy .diff':>12} {'size':>6}")
    print("-" * 64)
    for family in (products, layers):
        previous = None
        for k in (2, 4, 8, 16, 32, 64):
            f = family(k)
            G, t = timed(lambda: derive.gradient(f, X))
            ratio = f"{t / previous:.1f}" if previous else ""
            previous = t
            S, ts = timed(lambda: f.diff(X)) if k <= 16 else (None, "skipped")
            sympy_col = f"{ts * 1e3:.1f} ms" if isinstance(ts, float) else ts
            sympy_size = size(S) if S is not None else ""
            print(f"{family.__name__:<9} {k:>3} | {t * 1e3:>10.1f} {ratio:>6} {size(G):>6} | {sympy_col:>12} {sympy_size:>6}")
    print()
    print("a `where` chain Z_k := tanh(Z_{k-1}) (its (1 - Z_i^2) products were expanded into 2^k terms before)")
    previous = None
    for k in (5, 10, 20, 40):
        f, where = where_chain(k)
        G, t = timed(lambda: derive.gradient(f, X, where=where), limit=120)
        ratio = f"{t / previous:.1f}" if previous else ""
        previous = t
        print(f"{'where':<9} {k:>3} | {t * 1e3:>10.1f} {ratio:>6} {size(G):>6}")


if __name__ == "__main__":
    main()
