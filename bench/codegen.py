"""One gradient step with the generated code against the hand-written recursion and autodiff.

For 784-256-256-10 (relu, softmax + cross-entropy, batch 256) and a deep narrow net (16 layers of
width 64, tanh, batch 256), float64 and float32, prints the median and the best time of 50 calls
(5 interleaved rounds of 10, see _timing.race) of:
  - the hand-written NumPy recursion (verify.recursion.gradients): the reference, 1.00x;
  - derive's generated function (result.numpy(), one pass for all gradients);
  - per-parameter generated functions (what a naive sympy.lambdify per gradient does: the forward
    pass and the δ recursion recomputed for each parameter);
  - PyTorch autograd on the CPU, and jax.jit(jax.grad), when installed;
  - the same generated function on PyTorch tensors, and under jax.jit on JAX arrays (array API code runs on
    both);
the fraction of this machine's measured matmul peak that the generated code reaches, and the generated
code's peak memory (tracemalloc) as a ratio to the recursion's.
"""
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from derive.codegen.program import compile_function  # noqa: E402
from _timing import print_tables, race  # noqa: E402
from verify import Spec, recursion  # noqa: E402

ROUNDS = 5  # of 10 timed calls each, after 3 untimed
NETWORKS = {
    "784-256-256-10 relu/softmax": dict(sizes=[784, 256, 256, 10], activation="relu", output="softmax",
                                        loss="softmax_ce"),
    "16 x 64 tanh": dict(sizes=[64] * 17, activation="tanh", output="identity", loss="half_sse"),
}
BATCH = 256


def peak_memory(fn):
    """Peak bytes allocated during one call (NumPy's allocations are traced by tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def flops(sizes, m):
    """forward Z = W A, ∂W = δ Aᵀ, and ∂A = Wᵀ δ for every layer but the first: 2 m n_in n_out each."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return sum(2 * m * a * b * (3 if k else 2) for k, (a, b) in enumerate(layers))


def per_parameter(result):
    """One generated function per gradient, each recomputing what it needs (the naive per-parameter way)."""
    args, statements, outputs = result.plan("gradients")
    functions = {name: compile_function(args, statements, G, name=f"d{name}") for name, G in outputs.items()}
    return lambda *values: {name: f(*values) for name, f in functions.items()}


def torch_step(config, X, Y, params, dtype):
    import torch

    names = list(params)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    ps = [torch.tensor(params[k], requires_grad=True) for k in names]
    L = len(config["sizes"]) - 1
    act = {"relu": torch.relu, "tanh": torch.tanh}[config["activation"]]

    def step():
        p = dict(zip(names, ps))
        A = Xt
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            A = act(Z) if l < L else Z
        if config["loss"] == "softmax_ce":
            loss = -(Yt * torch.log_softmax(A, dim=0)).sum() / Xt.shape[1]
        else:
            loss = 0.5 * ((A - Yt) ** 2).sum() / Xt.shape[1]
        return torch.autograd.grad(loss, ps)

    return step


def jax_step(config, X, Y, params, dtype):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    L = len(config["sizes"]) - 1
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[config["activation"]]

    def loss(p, X, Y):
        A = X
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            A = act(Z) if l < L else Z
        if config["loss"] == "softmax_ce":
            return -(Y * jax.nn.log_softmax(A, axis=0)).sum() / X.shape[1]
        return 0.5 * ((A - Y) ** 2).sum() / X.shape[1]

    grad = jax.jit(jax.grad(loss))
    p, Xj, Yj = {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(X), jnp.asarray(Y)
    return lambda: jax.block_until_ready(grad(p, Xj, Yj))


def generated_on_torch(generated, X, Y, params):
    """The same generated function on PyTorch tensors (PyTorch's own BLAS, no autograd)."""
    import torch
    values = {k: torch.from_numpy(v) for k, v in {"X": X, "Y": Y, **params}.items()}
    return lambda: generated(**values)


def generated_on_jax(generated, X, Y, params):
    """The same generated function on JAX arrays under jax.jit (XLA fuses its elementwise work)."""
    import jax
    import jax.numpy as jnp
    compiled = jax.jit(lambda values: generated(**values))
    values = {k: jnp.asarray(v) for k, v in {"X": X, "Y": Y, **params}.items()}
    return lambda: jax.block_until_ready(compiled(values))


def main():
    try:
        import torch
        torch.set_num_threads(2)
        have_torch = f"torch {torch.__version__}"
    except ImportError:
        have_torch = None
    try:
        import jax
        have_jax = f"jax {jax.__version__}"
    except ImportError:
        have_jax = None
    columns = ["generated", "per-param", "torch", "gen/torch", "jax", "gen/jax"]
    rows = {"median": [], "best": []}
    for label, config in NETWORKS.items():
        result = derive.backprop(derive.mlp(**config, samples=BATCH))
        net = result.network
        spec = Spec.of(net)
        generated = result.numpy()
        naive = per_parameter(result)
        rng = np.random.default_rng(0)
        for dtype in (np.float64, np.float32):
            sizes = [int(n) for n in net.sizes]
            X = rng.normal(size=(sizes[0], BATCH)).astype(dtype)
            Y = np.eye(sizes[-1], dtype=dtype)[:, rng.integers(0, sizes[-1], BATCH)]
            params = {}
            for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
                params[f"W{l}"] = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(dtype)
                params[f"b{l}"] = np.zeros((b, 1), dtype=dtype)
            values = [X, Y, *[params[p.name] for p in net.parameters]]
            functions = {"recursion": lambda: recursion.gradients(spec, X, Y, params),
                         "generated": lambda: generated(X=X, Y=Y, **params),
                         "per-param": lambda: naive(*values)}
            if have_torch:
                functions["torch"] = torch_step(config, X, Y, params, dtype)
                functions["gen/torch"] = generated_on_torch(generated, X, Y, params)
            if have_jax:
                functions["jax"] = jax_step(config, X, Y, params, dtype)
                functions["gen/jax"] = generated_on_jax(generated, X, Y, params)
            square = np.random.default_rng(0).normal(size=(1024, 1024)).astype(dtype)
            functions["peak"] = lambda: square @ square
            samples = race(functions, ROUNDS)
            memory = (peak_memory(lambda: generated(X=X, Y=Y, **params))
                      / peak_memory(lambda: recursion.gradients(spec, X, Y, params)))
            for statistic, reduce in (("median", statistics.median), ("best", min)):
                times = {name: reduce(ts) for name, ts in samples.items()}
                cells = [f"{times[c] / times['recursion']:.2f}x" if c in times else "n/a" for c in columns]
                # the fraction of the machine's matmul rate (a 1024² product, timed in the same rounds)
                fraction = flops(sizes, BATCH) / times["generated"] / (2 * 1024 ** 3 / times["peak"])
                cells += [f"{fraction * 100:.0f}%", f"{memory:.2f}x"]
                rows[statistic].append(f"{label:<28} {np.dtype(dtype).name:<8} {times['recursion'] * 1e3:>8.2f}ms "
                                       + " ".join(f"{c:>9}" for c in cells))
    header = (f"{'network':<28} {'dtype':<8} {'recursion':>10} "
              + " ".join(f"{c:>9}" for c in [*columns, "% of peak", "memory"]))
    print_tables(rows, header, f"{{statistic}} of {ROUNDS} interleaved rounds x 10 calls; ratios to the hand-written NumPy "
                               "recursion")
    print(f"torch (autograd) and gen/torch (the generated function on torch tensors): {have_torch or 'not installed'}; "
          f"jax (jax.jit(jax.grad)) and gen/jax (jax.jit of the generated function): {have_jax or 'not installed'}")


if __name__ == "__main__":
    main()
