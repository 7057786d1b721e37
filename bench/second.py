"""Second order against JAX (jit) and PyTorch on the CPU:

  1. the Newton step of L2-regularised logistic regression (n = 500 features, m = 2000 samples, float64): derive's
     gradient_and_hessian (H = Xᵀ diag(a ⊙ (1 − a)) X / m + λI, no diagonal matrix formed) then a solve, against
     jax.hessian + jax.grad (jit) and torch.func.hessian + torch.func.grad, each followed by the same solve;
  2. the Hessian-vector product of an MLP 784-256-256-10 (tanh, softmax cross-entropy, batch 256, float32): derive's
     R pass (backprop(net).numpy("hvp")) against jax.jvp(jax.grad(·)) (jit) and torch.func.jvp(torch.func.grad(·)).

Prints the median time per call (interleaved rounds after warm-up), the ratios derive/torch (target ≤ 1.0) and
derive/jax (target ≤ 1.1), the rise of each one's resident set in a fresh process (first call, then steady), and
what derive's call allocates at most (tracemalloc). Libraries that are not installed are skipped.
"""
import json
import statistics
import subprocess
import tracemalloc
import sys
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from _timing import race  # noqa: E402

LAMBDA = 1e-2
N_FEATURES, M_SAMPLES = 500, 2000
SIZES, BATCH = [784, 256, 256, 10], 256


def logistic_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(M_SAMPLES, N_FEATURES)) / np.sqrt(N_FEATURES)
    w = rng.normal(size=(N_FEATURES, 1))
    y = (rng.uniform(size=(M_SAMPLES, 1)) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
    return X, y, 0.1 * rng.normal(size=(N_FEATURES, 1))


def mlp_data():
    rng = np.random.default_rng(0)
    params = {}
    for l, (a, b) in enumerate(zip(SIZES, SIZES[1:]), 1):
        params[f"W{l}"] = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32)
        params[f"b{l}"] = (0.1 * rng.normal(size=(b, 1))).astype(np.float32)
    X = rng.normal(size=(SIZES[0], BATCH)).astype(np.float32)
    Y = np.eye(SIZES[-1], dtype=np.float32)[:, rng.integers(0, SIZES[-1], size=BATCH)]
    V = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    return X, Y, params, V


# ---- derive ------------------------------------------------------------------------------------------------------

def derive_newton():
    m, n = (sp.Symbol(k, integer=True, positive=True) for k in "mn")
    X, w, y, a = (sp.MatrixSymbol(k, *s) for k, s in (("X", (m, n)), ("w", (n, 1)), ("y", (m, 1)), ("a", (m, 1))))
    lam, one = sp.Symbol("lambda", positive=True), sp.OneMatrix(m, 1)
    f = -sp.Trace(y.T * a.applyfunc(sp.log) + (one - y).T * (one - a).applyfunc(sp.log)) / m \
        + lam / 2 * sp.Trace(w.T * w)
    both = derive.hessian_derivation(f, w, {a: (X * w).applyfunc(derive.sigmoid)}).numpy("gradient_and_hessian")
    Xv, yv, w0 = logistic_data()

    def step():
        out = both(X=Xv, w=w0, y=yv, **{"lambda": LAMBDA})
        return np.linalg.solve(out["hessian"], out["gradient"])
    return step


def derive_hvp():
    net = derive.mlp(SIZES, activation="tanh", output="softmax", loss="softmax_ce", samples=BATCH)
    hvp = derive.backprop(net).numpy("hvp")
    X, Y, params, V = mlp_data()
    directions = {f"V_{k}": v for k, v in V.items()}
    return lambda: hvp(X=X, Y=Y, **params, **directions)


# ---- JAX ---------------------------------------------------------------------------------------------------------

def jax_newton():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    X, y, w0 = (jnp.asarray(v) for v in logistic_data())

    def loss(w):
        z = X @ w
        return jnp.mean(y * jnp.logaddexp(0.0, -z) + (1 - y) * jnp.logaddexp(0.0, z)) + LAMBDA / 2 * jnp.sum(w * w)

    grad, hess = jax.jit(jax.grad(loss)), jax.jit(jax.hessian(loss))

    def step():
        g, H = grad(w0), hess(w0).reshape(N_FEATURES, N_FEATURES)
        return np.linalg.solve(np.asarray(H), np.asarray(g))
    return step


def jax_hvp():
    import jax
    import jax.numpy as jnp
    X, Y, params, V = mlp_data()
    X, Y = jnp.asarray(X), jnp.asarray(Y)
    params, V = ({k: jnp.asarray(v) for k, v in d.items()} for d in (params, V))
    L = len(SIZES) - 1

    def loss(p):
        A = X
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            A = jnp.tanh(Z) if l < L else Z
        return -jnp.sum(Y * jax.nn.log_softmax(A, axis=0)) / X.shape[1]

    hvp = jax.jit(lambda p, v: jax.jvp(jax.grad(loss), (p,), (v,))[1])
    return lambda: jax.block_until_ready(hvp(params, V))


# ---- PyTorch -----------------------------------------------------------------------------------------------------

def torch_newton():
    import torch
    from torch.func import grad, hessian
    X, y, w0 = (torch.tensor(v) for v in logistic_data())

    def loss(w):
        z = X @ w
        data = y * torch.nn.functional.softplus(-z) + (1 - y) * torch.nn.functional.softplus(z)
        return data.mean() + LAMBDA / 2 * (w * w).sum()

    def step():
        g, H = grad(loss)(w0), hessian(loss)(w0).reshape(N_FEATURES, N_FEATURES)
        return np.linalg.solve(H.numpy(), g.numpy())
    return step


def torch_hvp():
    import torch
    from torch.func import grad, jvp
    X, Y, params, V = mlp_data()
    X, Y = torch.tensor(X), torch.tensor(Y)
    params, V = ({k: torch.tensor(v) for k, v in d.items()} for d in (params, V))
    L = len(SIZES) - 1

    def loss(p):
        A = X
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            A = torch.tanh(Z) if l < L else Z
        return -(Y * torch.log_softmax(A, dim=0)).sum() / X.shape[1]

    return lambda: jvp(grad(loss), (params,), (V,))[1]


TASKS = {
    "Newton step, logistic regression (n 500, m 2000, float64)":
        {"derive": derive_newton, "jax": jax_newton, "torch": torch_newton},
    "Hessian-vector product, MLP 784-256-256-10 (batch 256, float32)":
        {"derive": derive_hvp, "jax": jax_hvp, "torch": torch_hvp},
}


def available(builders):
    out = {}
    for name, build in builders.items():
        try:
            out[name] = build()
        except ImportError:
            print(f"  ({name} not installed: skipped)")
    return out


def check(task, functions):
    """The implementations agree (so the race compares the same computation)."""
    results = {k: f() for k, f in functions.items()}
    ref = results["derive"]
    for name, r in results.items():
        if isinstance(ref, dict):
            err = max(float(np.max(np.abs(np.asarray(r[k]) - ref[k]))) / max(1e-30, float(np.max(np.abs(ref[k]))))
                      for k in ref)
        else:
            err = float(np.max(np.abs(np.asarray(r) - ref))) / float(np.max(np.abs(ref)))
        assert err < 1e-3, (task, name, err)


def peak_memory(task, library):
    """(first, steady) MiB: in a fresh process, how far the resident set rises above its level after building
    `library`'s function during its first call (JAX compiles then) and during 3 more calls (Linux's peak counter
    VmHWM reset before each)."""
    out = subprocess.run([sys.executable, __file__, "--memory", task, library], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def _rise(calls):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")   # resets VmHWM to the current resident set
    before = _status("VmRSS")
    for call in calls:
        call()
    return _status("VmHWM") - before


def _memory_child(task, library):
    fn = TASKS[task][library]()
    print(json.dumps([_rise([fn]), _rise([fn] * 3)]))


def traced_peak(fn):
    """MiB: the peak of what one call allocates through Python's allocator (NumPy arrays included), after a warm-up."""
    fn()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def main(rounds=7, calls=5):
    for task, builders in TASKS.items():
        print(task)
        functions = available(builders)
        check(task, functions)
        times = race(functions, rounds=rounds, calls=calls, warmup=2)
        medians = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        for name in functions:
            first, steady = peak_memory(task, name)
            print(f"  {name:7s} median {medians[name] * 1e3:9.2f} ms   best {best[name] * 1e3:9.2f} ms   "
                  f"resident set +{first:6.1f} MiB on the first call, +{steady:6.1f} MiB after")
        print(f"  derive allocates at most {traced_peak(functions['derive']):.1f} MiB per call (tracemalloc)")
        for other in ("torch", "jax"):
            if other in functions:
                print(f"  derive / {other}: {medians['derive'] / medians[other]:.2f}× (median), "
                      f"{best['derive'] / best[other]:.2f}× (best)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        _memory_child(*sys.argv[2:4])
    else:
        main()
