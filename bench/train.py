"""Time per epoch of training the digits network (64 → 32 → 10, tanh/softmax, mini-batches of 64, float64, one epoch
= 21 steps of SGD over the 1,347 training images, and 3 steps of 448) five ways, interleaved (see _timing.race), with the ratios the
issue targets: net.torch() against plain PyTorch autograd, and the derived custom VJP (.jax()) under jax.jit against
jax.grad of the same loss written in JAX, both on this machine's CPU.
  (a) the generated NumPy program and plain SGD;
  (b) net.torch() with torch.optim.SGD;
  (c) the same network in plain PyTorch, autograd, torch.optim.SGD;
  (d) net.jax() under jax.jit, one jitted SGD step per batch;
  (e) the same network in JAX, jax.jit(jax.grad), one jitted SGD step per batch.
"""
import importlib.util
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import derive  # noqa: E402
from _timing import race  # noqa: E402

ROUNDS, CALLS = 7, 3   # interleaved rounds of 3 epochs each, after a warm-up epoch
BATCHES = (64, 448)   # the training example's mini-batch, where each step's fixed costs show; 3 steps an epoch


def _training():
    spec = importlib.util.spec_from_file_location("training", HERE.parent / "examples" / "training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    for batch in BATCHES:
        epoch(batch)


def epoch(batch):
    import jax
    import jax.numpy as jnp
    import torch

    jax.config.update("jax_enable_x64", True)
    training = _training()
    X, Y, _, _ = training.digits()
    bp = derive.backprop(training.digit_network())
    order = training.batches(len(X), steps=len(X) // batch, size=batch)   # one epoch
    batches = [(X[rows], Y[rows]) for rows in order]
    rate, start = training.RATE, bp.network.initial_parameters(0)

    step = bp.numpy("loss_and_gradients")

    def numpy_epoch():
        params = dict(start)
        for x, y in batches:
            out = step(X=x, Y=y, **params)
            params = {k: v - rate * out[k] for k, v in params.items()}

    module = bp.torch(dtype=torch.float64)
    torch_batches = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in batches]
    optimizer = torch.optim.SGD(module.parameters(), lr=rate)

    def module_epoch():
        for x, y in torch_batches:
            optimizer.zero_grad()
            module(x, y).backward()
            optimizer.step()

    plain = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    plain_optimizer = torch.optim.SGD(plain.values(), lr=rate)

    def autograd_epoch():
        for x, y in torch_batches:
            plain_optimizer.zero_grad()
            training.digits_autograd(plain, x, y).backward()
            plain_optimizer.step()

    derived_loss = bp.jax()

    def jax_loss(p, x, y):   # the same network written in JAX
        z = jnp.tanh(x @ p["W1"] + p["b1"].T) @ p["W2"] + p["b2"].T
        return -(y * jax.nn.log_softmax(z, axis=1)).sum() / x.shape[0]

    def sgd(loss):
        return jax.jit(lambda p, x, y: jax.tree_util.tree_map(lambda a, g: a - rate * g, p, jax.grad(loss)(p, x, y)))

    jax_batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in batches]
    jax_start = {k: jnp.asarray(v) for k, v in start.items()}

    def jax_epoch(update):
        def epoch():
            p = jax_start
            for x, y in jax_batches:
                p = update(p, x, y)
            jax.block_until_ready(p)
        return epoch

    derived_step, plain_step = sgd(derived_loss), sgd(jax_loss)
    epochs = {"(a) NumPy, generated": numpy_epoch, "(b) net.torch()": module_epoch,
              "(c) PyTorch autograd": autograd_epoch, "(d) net.jax(), jit": jax_epoch(derived_step),
              "(e) jax.grad, jit": jax_epoch(plain_step)}
    times = race(epochs, rounds=ROUNDS, calls=CALLS, warmup=1)
    print(f"digits 64 → 32 → 10, {len(batches)} steps of {batch} per epoch, float64, CPU; "
          f"ms per epoch over {ROUNDS} interleaved rounds of {CALLS}")
    print(f"{'':24s} {'median':>8s} {'best':>8s}")
    for name, t in times.items():
        print(f"{name:24s} {1e3 * statistics.median(t):8.2f} {1e3 * min(t):8.2f}")
    for ours, theirs in (("(b) net.torch()", "(c) PyTorch autograd"), ("(d) net.jax(), jit", "(e) jax.grad, jit")):
        print(f"{ours} / {theirs}: median {statistics.median(times[ours]) / statistics.median(times[theirs]):.2f}x, "
              f"best {min(times[ours]) / min(times[theirs]):.2f}x")
    print(f"(a) / (c): median {statistics.median(times['(a) NumPy, generated']) / statistics.median(times['(c) PyTorch autograd']):.2f}x")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
