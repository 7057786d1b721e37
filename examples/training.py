"""Derived gradients training networks on real data, three ways from one start: (a) the generated NumPy gradients with
plain SGD, (b) `derive.backprop(net).torch()` with torch.optim.SGD, (c) the same network written in plain PyTorch and
differentiated by autograd. scikit-learn's digits (1,797 8×8 images, shipped with it) train a 64 → 32 → 10 network;
a recurrent network learns the sign of a sequence's sum. `make training` (python examples/training.py) draws the loss
curves and writes the figures into output/training/; needs the `train` extra (PyTorch, scikit-learn, matplotlib)."""
import sys
from pathlib import Path

import numpy as np
import torch

import derive

STEPS, BATCH, RATE = 200, 64, 0.2   # 200 steps of SGD on mini-batches of 64
HIDDEN = 32


def digits(seed=0):
    """(X_train, Y_train, X_test, Y_test): the digits' pixels scaled to [0, 1], one sample per row, one-hot targets;
    a stratified quarter held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X, Y = data.data / 16.0, np.eye(10)[data.target]
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.25, random_state=seed, stratify=data.target)
    return X_train, Y_train, X_test, Y_test


def sequences(count, steps=8, seed=0):
    """(inputs X1 … XT, each 1 × count, and one-hot targets 2 × count): whether the sequence's sum is positive."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((steps, count))
    return [values[t:t + 1] for t in range(steps)], np.eye(2)[(values.sum(axis=0) > 0).astype(int)].T


def batches(samples, steps=STEPS, size=BATCH, seed=0):
    """The sample indices of each step's mini-batch: epochs of one random permutation each, the last batch of an epoch
    dropped when short."""
    rng, order = np.random.default_rng(seed), []
    while len(order) < steps:
        perm = rng.permutation(samples)
        order += [perm[k:k + size] for k in range(0, samples - size + 1, size)]
    return order[:steps]


def digit_network():
    return derive.mlp([64, HIDDEN, 10], activation="tanh", output="softmax", loss="softmax_ce", layout="AW")


def sequence_network(steps=8):
    return derive.Network(1, [derive.Recurrent(16, steps), derive.Dense(2, "softmax")], loss="softmax_ce")


def _select(inputs, rows, axis):
    """The mini-batch `rows` of every input and target (samples along `axis`)."""
    return {k: np.take(v, rows, axis=axis) for k, v in inputs.items()}


def train_numpy(bp, data, order, axis, rate=RATE, seed=0):
    """(a) The generated NumPy program and plain SGD: P ← P − rate ∂L/∂P. The loss at every step, and the parameters."""
    step = bp.numpy("loss_and_gradients")
    params, losses = bp.network.initial_parameters(seed), []
    for rows in order:
        out = step(**_select(data, rows, axis), **params)
        losses.append(float(out["loss"]))
        params = {k: v - rate * out[k] for k, v in params.items()}
    return losses, params


def train_module(bp, data, order, axis, rate=RATE, seed=0):
    """(b) net.torch() with torch.optim.SGD. The loss at every step, and the module."""
    module = bp.torch(seed=seed, dtype=torch.float64)
    optimizer, losses = torch.optim.SGD(module.parameters(), lr=rate), []
    names = [x.name for x in bp.network.inputs]
    for rows in order:
        batch = {k: torch.as_tensor(v) for k, v in _select(data, rows, axis).items()}
        X = batch[names[0]] if len(names) == 1 else [batch[n] for n in names]
        optimizer.zero_grad()
        loss = module(X, batch["Y"])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, module


def digits_autograd(params, X, Y):
    """(c)'s network in plain PyTorch: Z1 = X W1 + 1 b1ᵀ, A1 = tanh(Z1), Z2 = A1 W2 + 1 b2ᵀ, L = −Σ Y ⊙ log softmax(Z2)/m."""
    A1 = torch.tanh(X @ params["W1"] + params["b1"].T)
    Z2 = A1 @ params["W2"] + params["b2"].T
    return -(Y * torch.log_softmax(Z2, dim=1)).sum() / X.shape[0]


def sequence_autograd(params, inputs, Y):
    """(c)'s recurrent network in plain PyTorch: H_t = tanh(Wh H_{t−1} + Wx X_t + b1 1ᵀ), H_0 = 0, softmax output."""
    H = torch.zeros(params["Wh1"].shape[0], Y.shape[1], dtype=Y.dtype)
    for X in inputs:
        H = torch.tanh(params["Wh1"] @ H + params["Wx1"] @ X + params["b1"])
    Z = params["W2"] @ H + params["b2"]
    return -(Y * torch.log_softmax(Z, dim=0)).sum() / Y.shape[1]


def train_autograd(bp, loss_of, data, order, axis, rate=RATE, seed=0):
    """(c) The network written by hand in PyTorch, its gradients by autograd, plain SGD from the same start."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in bp.network.initial_parameters(seed).items()}
    names, losses = [x.name for x in bp.network.inputs], []
    for rows in order:
        batch = {k: torch.as_tensor(v) for k, v in _select(data, rows, axis).items()}
        loss = loss_of(params, batch[names[0]] if len(names) == 1 else [batch[n] for n in names], batch["Y"])
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            for p, g in zip(params.values(), grads):
                p -= rate * g
        losses.append(float(loss.detach()))
    return losses


def accuracy(predicted, Y, axis):
    return float(np.mean(np.argmax(predicted, axis=axis) == np.argmax(Y, axis=axis)))


def run_digits(steps=STEPS):
    """The three runs on the digits: {"curves": {name: losses}, "accuracy": test accuracy of each, ...}."""
    X, Y, X_test, Y_test = digits()
    bp, data = derive.backprop(digit_network()), {"X": X, "Y": Y}
    order = batches(len(X), steps)
    a, params = train_numpy(bp, data, order, axis=0)
    b, module = train_module(bp, data, order, axis=0)
    c = train_autograd(bp, digits_autograd, data, order, axis=0)
    forward = bp.numpy("forward")
    test = {"a": accuracy(forward(X=X_test, **params)["A2"], Y_test, 1),
            "b": accuracy(module.predict(torch.as_tensor(X_test)).numpy(), Y_test, 1)}
    return {"task": "digits", "network": bp.network.describe(), "curves": {"a": a, "b": b, "c": c}, "accuracy": test,
            "train": len(X), "test": len(X_test)}


def run_sequences(steps=STEPS, length=8):
    """The three runs on the sign-of-the-sum task (1,024 training sequences, 512 held out)."""
    inputs, Y = sequences(1024, length, seed=0)
    test_inputs, Y_test = sequences(512, length, seed=1)
    bp = derive.backprop(sequence_network(length))
    data = {**{f"X{t + 1}": x for t, x in enumerate(inputs)}, "Y": Y}
    order = batches(Y.shape[1], steps)
    a, params = train_numpy(bp, data, order, axis=1)
    b, module = train_module(bp, data, order, axis=1)
    c = train_autograd(bp, sequence_autograd, data, order, axis=1)
    forward = bp.numpy("forward")
    out = str(bp.network.result)
    test = {"a": accuracy(forward(**{f"X{t + 1}": x for t, x in enumerate(test_inputs)}, **params)[out], Y_test, 0),
            "b": accuracy(module.predict([torch.as_tensor(x) for x in test_inputs]).numpy(), Y_test, 0)}
    return {"task": "sequences", "network": bp.network.describe(), "curves": {"a": a, "b": b, "c": c},
            "accuracy": test, "train": Y.shape[1], "test": Y_test.shape[1]}


def agreement(run):
    """The largest relative difference of (b) and (c) from (a), step by step."""
    a = np.array(run["curves"]["a"])
    return {k: float(np.max(np.abs(np.array(run["curves"][k]) - a) / np.abs(a))) for k in ("b", "c")}


LABELS = {"a": "(a) generated NumPy gradients, SGD", "b": "(b) net.torch(), torch.optim.SGD",
          "c": "(c) plain PyTorch autograd, SGD"}


def draw(run, path):
    """The figure of the run as a deterministic SVG file."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "derive"   # the same ids in every run: byte-identical files
    drawn = figure(run)
    drawn.savefig(path, metadata={"Date": None})
    plt.close(drawn)


def figure(run):
    """The three loss curves (they overlap) and their relative differences from (a); an exact 0 is drawn at 1e-18."""
    import matplotlib.pyplot as plt

    drawn, (curves, gaps) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, style in (("a", "-"), ("b", "--"), ("c", ":")):
        curves.plot(run["curves"][key], style, label=LABELS[key], linewidth=1.6)
    curves.set(xlabel="step", ylabel="training loss (mini-batch)",
               title=f"{run['task']}: the three runs (test accuracy {run['accuracy']['a']:.1%})")
    curves.legend(fontsize=8)
    a = np.array(run["curves"]["a"])
    for key in ("b", "c"):
        gap = np.abs(np.array(run["curves"][key]) - a) / np.abs(a)
        gaps.semilogy(np.maximum(gap, 1e-18), ".", markersize=2, label=LABELS[key])
    gaps.axhline(1e-6, color="grey", linewidth=0.8)
    gaps.set(xlabel="step", ylabel="|loss − loss of (a)| / loss of (a)",
             title="relative difference from (a) (line: 1e-6; 0 at 1e-18)")
    gaps.legend(fontsize=8)
    drawn.tight_layout()
    return drawn


def report(runs):
    """The runs in Markdown: per task the network, the final losses, the agreement and the test accuracy."""
    lines = ["# Training with derived gradients", "",
             f"{STEPS} steps of SGD (rate {RATE}, mini-batches of {BATCH}) from one start, float64, three ways: "
             + "; ".join(LABELS.values()) + ".", "",
             "| task | network | final loss (a) / (b) / (c) | largest relative difference from (a) | test accuracy |",
             "|---|---|---|---|---|"]
    for run in runs:
        final = " / ".join(f"{run['curves'][k][-1]:.6f}" for k in "abc")
        gap = agreement(run)
        lines.append(f"| {run['task']} ({run['train']} training, {run['test']} test samples) | {run['network']} | "
                     f"{final} | (b) {gap['b']:.1e}, (c) {gap['c']:.1e} | {run['accuracy']['a']:.1%} |")
    return "\n".join(lines) + "\n"


def main(out="output/training"):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_digits(), run_sequences()]
    for run in runs:
        draw(run, out / f"{run['task']}.svg")
    (out / "README.md").write_text(report(runs), encoding="utf-8")
    print(report(runs))


if __name__ == "__main__":
    main(*sys.argv[1:2])
