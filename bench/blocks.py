"""Generated code for blocks beyond the MLP against a hand-written NumPy backward pass (verify's block reference,
written without derive) and PyTorch on the CPU (autograd; torch.nn.GRU and torch.nn.LSTM for the gated layers, the
same cost with PyTorch's own kernels): a transformer block, a Conv1D stack, recurrent, GRU and LSTM layers, batch norm
with dropout, and an embedding.

Prints per network the median time per gradient evaluation (interleaved rounds, after warm-up), the ratios
derive/NumPy and derive/torch (targets ≤ 1.1 and ≤ 1.0), and the peak memory NumPy allocates (tracemalloc).
"""
import statistics
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from derive import (GRU, LSTM, BatchNorm, Conv1D, Dense, Dropout, Embedding,  # noqa: E402
                    LayerNorm, Recurrent, Residual, SelfAttention)
from verify import blocks as reference  # noqa: E402
from _timing import race  # noqa: E402

NETWORKS = {
    "transformer block (d 64, 128 tokens, 2 heads)": lambda: derive.Network(
        64, [Residual([LayerNorm(), SelfAttention(32, heads=2)]),
             Residual([LayerNorm(), Dense(256, "relu"), Dense(64, "identity")])], layout="AW", samples=128),
    "Conv1D stack (16 → 32 → 32 channels, width 5, 512 steps)": lambda: derive.Network(
        16, [Conv1D(32, 5, activation="relu"), Conv1D(32, 5, activation="relu"), Dense(8, "identity")],
        layout="AW", samples=512),
    "recurrent (64 → 128 hidden, T = 32, batch 64)": lambda: derive.Network(
        64, [Recurrent(128, 32), Dense(10, "identity")], layout="AW", samples=64),
    "GRU (64 → 128 hidden, T = 16, batch 64)": lambda: derive.Network(
        64, [GRU(128, 16), Dense(10, "identity")], layout="AW", samples=64),
    "LSTM (64 → 128 hidden, T = 16, batch 64)": lambda: derive.Network(
        64, [LSTM(128, 16), Dense(10, "identity")], layout="AW", samples=64),
    "batch norm and dropout (256 → 512 → 512, batch 256)": lambda: derive.Network(
        256, [Dense(512, "relu"), BatchNorm(), Dropout(0.5), Dense(512, "identity")], layout="AW", samples=256),
    "embedding (vocab 10000 → 128, 2048 tokens)": lambda: derive.Network(
        10000, [Embedding(10000, 128), Dense(64, "tanh")], layout="AW", samples=2048),
}


def gated(torch, b, t, l):
    """PyTorch's own GRU or LSTM layer (its fused kernels) with the network's weights, the gates in its order."""
    order = "rzn" if b["kind"] == "GRU" else "ifgo"
    n, h = t[f"Wx{order[0]}{l}"].shape
    layer = (torch.nn.GRU if b["kind"] == "GRU" else torch.nn.LSTM)(n, h).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.cat([t[f"Wx{k}{l}"].T for k in order]))
        layer.weight_hh_l0.copy_(torch.cat([t[f"Wh{k}{l}"].T for k in order]))
        layer.bias_ih_l0.copy_(torch.cat([t[f"b{k}{l}"][:, 0] for k in order]))
        layer.bias_hh_l0.zero_()
    return layer


def torch_function(plain, arrays):
    """The same network's forward pass in PyTorch; backward by autograd. None without torch."""
    try:
        import torch
    except ImportError:
        return None
    t = {k: torch.tensor(v, requires_grad=k != "Y" and k[0] not in "XM" and v.dtype.kind == "f")
         for k, v in arrays.items()}
    layers = {b["index"]: gated(torch, b, t, b["index"]) for b in plain["blocks"] if b["kind"] in ("GRU", "LSTM")}

    def run(blocks, x):
        for b in blocks:
            l, kind = b.get("index"), b["kind"]
            if kind == "residual":
                x = x + run(b["layers"], x)
            elif kind == "dense":
                z = x @ t[f"W{l}"] + t[f"b{l}"].T
                x = {"relu": torch.relu, "identity": lambda v: v, "tanh": torch.tanh}[b["activation"]](z)
            elif kind == "layer norm":
                x = torch.nn.functional.layer_norm(x, x.shape[1:], t[f"gamma{l}"][:, 0], t[f"beta{l}"][:, 0],
                                                   b["eps"])
            elif kind == "self-attention":
                q, k, v = x @ t[f"Wq{l}"], x @ t[f"Wk{l}"], x @ t[f"Wv{l}"]
                h, dk = b["heads"], b["d_k"]
                q, k, v = (u.reshape(-1, h, dk).transpose(0, 1) for u in (q, k, v))
                o = torch.softmax(q @ k.transpose(1, 2) / dk ** 0.5, dim=-1) @ v
                x = o.transpose(0, 1).reshape(-1, h * dk) @ t[f"Wo{l}"]
            elif kind == "convolution":
                w = b["width"]
                kernel = t[f"K{l}"].reshape(w, -1, t[f"K{l}"].shape[1]).permute(2, 1, 0)
                z = torch.nn.functional.conv1d(x.T[None], kernel, t[f"b{l}"][:, 0], stride=b["stride"],
                                               padding=b["padding"])[0].T
                x = torch.relu(z) if b["activation"] == "relu" else z
            elif kind == "batch norm":
                x = torch.nn.functional.batch_norm(x, None, None, t[f"gamma{l}"][:, 0], t[f"beta{l}"][:, 0], True,
                                                   eps=b["eps"])
            elif kind == "dropout":
                x = x * t[f"M{l}"] / (1 - b["p"])
            elif kind == "embedding":
                x = torch.nn.functional.embedding(x, t[f"E{l}"])
            elif kind in ("GRU", "LSTM"):
                x = layers[l](torch.stack([t[f"X{s}"] for s in range(1, b["steps"] + 1)]))[0][-1]
            elif kind == "recurrent":
                H = None
                for s in range(1, b["steps"] + 1):
                    z = t[f"X{s}"] @ t[f"Wx{l}"] + t[f"b{l}"].T + (H @ t[f"Wh{l}"] if H is not None else 0)
                    H = torch.tanh(z)
                x = H
        return x

    params = [v for v in t.values() if v.requires_grad] + [p for m in layers.values() for p in m.parameters()]

    def step():
        for p in params:
            p.grad = None
        x = t.get("X")
        out = run(plain["blocks"], x)
        loss = 0.5 * ((out - t["Y"]) ** 2).sum() / out.shape[0]
        loss.backward()
        return [p.grad for p in params]
    return step


def peak(fn):
    tracemalloc.start()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top / 2 ** 20


def main():
    print(f"{'network':<58} {'derive ms':>10} {'NumPy ms':>9} {'torch ms':>9} {'/NumPy':>7} {'/torch':>7} "
          f"{'peak MiB derive/NumPy':>22}")
    chosen = sys.argv[1:]   # words of the labels to run (all without)
    for label, make in NETWORKS.items():
        if chosen and not any(w in label for w in chosen):
            continue
        net = make()
        plain = net.specification()
        shapes = reference.shapes(plain, {})
        arrays = reference.draw(plain, shapes, np.random.default_rng(0))
        fn = derive.backprop(net).numpy()
        ref = reference.Reference(plain)
        # tokens as their indices, for derive and torch alike (the reference reads them one-hot)
        tokens = {"X": np.argmax(arrays["X"], axis=1)} if plain["blocks"][0]["kind"] == "embedding" else {}
        functions = {"derive": lambda: fn(**{**arrays, **tokens}), "numpy": lambda: ref.run(arrays)}
        torch_step = torch_function(plain, {**arrays, **tokens})
        if torch_step is not None:
            functions["torch"] = torch_step
        times = {k: statistics.median(v) * 1e3 for k, v in race(functions, rounds=9, calls=10).items()}
        torch_ms = times.get("torch")
        print(f"{label:<58} {times['derive']:>10.2f} {times['numpy']:>9.2f} "
              f"{torch_ms if torch_ms else float('nan'):>9.2f} {times['derive'] / times['numpy']:>7.2f} "
              f"{times['derive'] / torch_ms if torch_ms else float('nan'):>7.2f} "
              f"{peak(functions['derive']):>10.1f}/{peak(functions['numpy']):.1f}")


if __name__ == "__main__":
    main()
