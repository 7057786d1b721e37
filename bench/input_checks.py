"""What the generated functions' input checks cost: check_shapes (every array's type, rank and shape against the
derived sizes, the symbolic sizes bound once) timed alone and as a fraction of one gradient call, for the networks
of bench/codegen.py, float64 and float32. Best of interleaved blocks (_timing.race)."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
from _timing import race  # noqa: E402
from codegen import BATCH, NETWORKS  # noqa: E402
from verify import data  # noqa: E402


def main():
    print(f"{'network':<28} {'dtype':<8} {'call':>9} {'checks':>9} {'share':>7}")
    for name, config in NETWORKS.items():
        net = derive.mlp(**config, layout="WA")
        result = derive.backprop(net)
        for dtype in (np.float64, np.float32):
            X, Y, params = data.draw(net, np.random.default_rng(0), data.dimensions(net, samples=BATCH), dtype)
            gradients = result.numpy()
            scope = {}
            exec(compile(gradients.source, "<generated>", "exec"), scope)
            arrays = (X, Y, *params.values())
            names = ("X", "Y", *params)
            expected = tuple((k, tuple(int(s) for s in a.shape)) for k, a in zip(names, arrays))
            xp = scope["namespace"](*arrays)
            times = race({"call": lambda: gradients(X=X, Y=Y, **params),
                          "checks": lambda: scope["check_shapes"](xp, arrays, expected, ())}, rounds=5)
            call, checks = min(times["call"]), min(times["checks"])
            print(f"{name:<28} {np.dtype(dtype).name:<8} {call * 1e3:>7.2f}ms {checks * 1e6:>7.1f}µs "
                  f"{checks / call:>7.2%}")


if __name__ == "__main__":
    main()
