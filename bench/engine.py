"""Derivation time and result size against depth, for derive.gradient and SymPy's MatrixExpr.diff; and what the
memos save.

Prints a table: for chains of k matrix products and of k elementwise layers, the median derivation
time over 3 runs and the result size (distinct sub-expressions), and the same for SymPy's .diff
where it succeeds within 20 s. Growth, not absolute speed, is the point: ratios t(2k)/t(k) near 2
mean linear cost.

Then the memos (an activation's scalar derivative, functions.derivative; a result's chains, textbook.textbook and
block_chains, and its programs, Result._program): a sigmoid MLP's backprop at depth 4 and 16, and derive.write (pdf=False) of two examples, each timed
against a reference run in the same process with every memo bypassed (the functions they wrap called instead), the
runs interleaved (_timing.race); medians and best-of, with ratios memoised/reference. "cold" clears the derivative's
memo before every call (the first network of a process), "warm" keeps it (every later one). Every write is of a
fresh copy of the result, so the chains are built in every call.

    python bench/engine.py          # both tables
    python bench/engine.py memo     # the memos only
"""
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from derive.core.expr import postorder  # noqa: E402
from derive.cli.examples import EXAMPLES  # noqa: E402
from derive.core.functions import derivative  # noqa: E402
from derive.engine.derivation import Result  # noqa: E402
from derive.networks import textbook  # noqa: E402
from _timing import print_tables, race, timed  # noqa: E402

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


def bypassed(fn, *memos):
    """fn with every name for each memoised function (in derive's modules and their classes) bound to the function it
    wraps while it runs: the reference (the code before the memos). The names are found once, not in the timed calls."""
    spaces = [module for name, module in sys.modules.items() if name.startswith("derive")]
    spaces += [value for space in spaces for value in vars(space).values() if isinstance(value, type)]
    bound = list({(id(space), name): (space, name, value) for space in spaces for name, value in vars(space).items()
                  if any(value is memo for memo in memos)}.values())

    def run():
        for module, name, value in bound:
            setattr(module, name, value.__wrapped__)
        try:
            return fn()
        finally:
            for module, name, value in bound:
                setattr(module, name, value)
    return run


def cold(fn):
    """fn after the derivative's memo is cleared."""
    def run():
        derivative.cache_clear()
        return fn()
    return run


def written(name, folder):
    """derive.write(pdf=False) of a fresh copy of the example's result (no chains kept from a call before)."""
    example = EXAMPLES[name]
    result = example.derive()
    extra, end = (example.appendix() if example.appendix else ()), (example.end() if example.end else ())
    return lambda: derive.write(dataclasses.replace(result), Path(folder) / name, title=example.title, pdf=False,
                                extra=extra, end=end)


MEMOS = (derivative, textbook.textbook, textbook.block_chains, Result._program)


def memo():
    folder = tempfile.mkdtemp(prefix="bench-engine-")
    cases = {**{f"sigmoid MLP backprop, depth {k}": (lambda k=k: derive.backprop(derive.mlp([4] * (k + 1))), 9, 5)
                for k in (4, 16)},
             **{f"write {name}": (written(name, folder), 5, 2) for name in ("block-transformer", "seed004-two-layer")}}
    rows = {"median": [], "best": []}
    for label, (fn, rounds, calls) in cases.items():
        samples = race({"reference": bypassed(fn, *MEMOS), "cold": cold(fn), "warm": fn}, rounds=rounds, calls=calls,
                       warmup=1)
        for statistic, reduce in (("median", statistics.median), ("best", min)):
            t = {name: reduce(ts) * 1e3 for name, ts in samples.items()}
            rows[statistic].append(f"{label:<38} {t['reference']:>10.1f} "
                                   + " ".join(f"{t[k]:>8.1f} {t[k] / t['reference']:>6.2f}x" for k in ("cold", "warm")))
    header = f"{'':<38} {'reference':>10} {'cold':>8} {'':>7} {'warm':>8} {'':>7}"
    print_tables(rows, header, "{statistic} (ms) of interleaved rounds; ratios to the reference with every memo bypassed")


if __name__ == "__main__":
    if sys.argv[1:] != ["memo"]:
        main()
        print()
    memo()
