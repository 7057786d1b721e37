"""Time of verify.check against full finite-difference checks in the style of torch.autograd.gradcheck.

For a 4-layer network (8-16-16-16-4, tanh, half_sse, 32 samples, float64) prints the median time
(3 runs) of:
  - verify.check(result, trials=1): recursion + finite differences (full for parameters up to 64
    entries, 3 random directions beyond) — exact proof off (too large for it);
  - verify.check with the exact SymPy proof, on the 2-2-2-2-2 version of the same network;
  - a full central-difference gradient of every parameter in NumPy (gradcheck-style, no torch);
  - torch.autograd.gradcheck on the same loss, when torch is installed (pip install torch==2.13.0).
and the ratio of each to verify.check.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
import verify  # noqa: E402
from verify import central_difference, data, recursion  # noqa: E402
from _timing import timed  # noqa: E402

SIZES, ACTIVATION, SAMPLES = [8, 16, 16, 16, 4], "tanh", 32


def full_finite_differences(spec, X, Y, params):
    """Every entry of every parameter perturbed both ways: what gradcheck does for a scalar loss."""
    return {name: central_difference(lambda **p: recursion.loss(spec, X, Y, p), params, name) for name in params}


def torch_gradcheck(X, Y, params):
    import torch

    names = list(params)
    tensors = [torch.tensor(params[k], dtype=torch.float64, requires_grad=True) for k in names]
    Xt, Yt = torch.tensor(X), torch.tensor(Y)

    def loss(*ps):
        p = dict(zip(names, ps))
        A = Xt
        for l in range(1, len(SIZES)):
            A = torch.tanh(p[f"W{l}"] @ A + p[f"b{l}"])
        return 0.5 * ((A - Yt) ** 2).sum() / Xt.shape[1]

    return torch.autograd.gradcheck(loss, tensors, eps=1e-6, atol=1e-5, rtol=1e-3)


def main():
    result = derive.backprop(derive.mlp(SIZES, activation=ACTIVATION, samples=SAMPLES))
    small = derive.backprop(derive.mlp([2, 2, 2, 2, 2], activation=ACTIVATION, samples=2))
    net = result.network
    spec = verify.Spec.of(net)
    X, Y, params = data.draw(net, np.random.default_rng(0), data.dimensions(net))
    rows = []
    report, t_check = timed(lambda: verify.check(result, trials=1, exact_proof=False))
    assert report is not None and report.passed, t_check if report is None else str(report)
    rows.append(("verify.check (recursion + FD)", t_check))
    report, t = timed(lambda: verify.check(small, trials=1, exact_proof=True), limit=120)
    assert report is not None and report.passed, t if report is None else str(report)
    rows.append(("verify.check + exact proof (2-2-2-2-2, m = 2)", t))
    rows.append(("full central differences (NumPy)", timed(lambda: full_finite_differences(spec, X, Y, params))[1]))
    try:
        import torch  # noqa: F401
        ok, t = timed(lambda: torch_gradcheck(X, Y, params))
        rows.append((f"torch.autograd.gradcheck ({torch.__version__})", t))
    except ImportError:
        rows.append(("torch.autograd.gradcheck", "torch not installed"))
    entries = sum(p.size for p in params.values())
    print(f"network {SIZES}, {ACTIVATION}, half_sse, m = {SAMPLES}, {entries} parameter entries, float64")
    print(f"{'check':<42} {'median':>12} {'/ verify.check':>15}")
    print("-" * 71)
    for label, t in rows:
        if isinstance(t, float):
            print(f"{label:<42} {t * 1e3:>9.1f} ms {t / t_check:>14.1f}x")
        else:
            print(f"{label:<42} {t:>12}")


if __name__ == "__main__":
    main()
