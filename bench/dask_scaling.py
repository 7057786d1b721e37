"""Gradients over more samples than fit at once: the generated function on Dask arrays chunked along the
sample axis, against the same function on one NumPy array.

784-256-10 (relu, softmax + cross-entropy), float32. For each number of samples m prints the wall time and the
peak traced memory (tracemalloc: NumPy's allocations in every thread) of
  - NumPy: the whole batch in memory, one call;
  - Dask (in memory): the same array cut into chunks of 10,000 samples, reduced by Dask's threaded scheduler;
  - Dask (generated): chunks drawn lazily (dask.array.random), so the data never exists whole: peak memory
    follows the chunk size, not m.
Time ratios are to NumPy at the same m (median of 3 runs).
"""
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402

SIZES = [784, 256, 10]
CHUNK = 10_000


def measure(fn, runs=3):
    """(median seconds, peak traced bytes of one run)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), top


def main():
    f = derive.backprop(derive.mlp(SIZES, activation="relu", output="softmax", loss="softmax_ce")).numpy(
        "loss_and_gradients")
    rng = np.random.default_rng(0)
    params = {}
    for l, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]), 1):
        params[f"W{l}"] = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32)
        params[f"b{l}"] = np.zeros((b, 1), dtype=np.float32)
    lazy_params = {k: da.from_array(v) for k, v in params.items()}
    print(f"{'samples':>9} {'input MB':>9} | {'NumPy':>16} | {'Dask, in memory':>22} | {'Dask, generated':>22}")
    print(f"{'':>9} {'':>9} | {'time':>7} {'peak MB':>8} | {'time':>7} {'ratio':>5} {'peak MB':>8} | "
          f"{'time':>7} {'ratio':>5} {'peak MB':>8}")
    print("-" * 90)
    with dask.config.set(scheduler="threads"):
        for m in (50_000, 200_000, 800_000):
            X = rng.normal(size=(SIZES[0], m)).astype(np.float32)
            Y = np.eye(SIZES[-1], dtype=np.float32)[:, rng.integers(0, SIZES[-1], m)]
            t_np, mem_np = measure(lambda: f(X=X, Y=Y, **params))
            Xd, Yd = da.from_array(X, chunks=(SIZES[0], CHUNK)), da.from_array(Y, chunks=(SIZES[-1], CHUNK))
            t_da, mem_da = measure(lambda: dask.compute(f(X=Xd, Y=Yd, **lazy_params))[0])
            del X, Y, Xd, Yd
            state = da.random.RandomState(0)
            Xg = state.normal(size=(SIZES[0], m), chunks=(SIZES[0], CHUNK)).astype(np.float32)
            labels = state.randint(0, SIZES[-1], size=m, chunks=CHUNK)
            Yg = (labels[None, :] == da.arange(SIZES[-1])[:, None]).astype(np.float32)
            t_gen, mem_gen = measure(lambda: dask.compute(f(X=Xg, Y=Yg, **lazy_params))[0])
            mb = SIZES[0] * m * 4 / 1e6
            print(f"{m:>9,} {mb:>9.0f} | {t_np:>6.2f}s {mem_np / 1e6:>8.0f} | {t_da:>6.2f}s {t_da / t_np:>4.2f}x "
                  f"{mem_da / 1e6:>8.0f} | {t_gen:>6.2f}s {t_gen / t_np:>4.2f}x {mem_gen / 1e6:>8.0f}")
    print(f"chunks of {CHUNK:,} samples; float32; dask {dask.__version__}, threaded scheduler")


if __name__ == "__main__":
    main()
