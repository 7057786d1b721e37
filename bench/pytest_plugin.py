"""What the installed pytest plugin (the gradcheck fixture) costs a pytest run that does not use it: a one-test file
run with the plugin and with `-p no:derive_verify`, interleaved subprocesses, median and best of each."""
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7


def run(folder, *options):
    """Seconds for one `python -m pytest` of the test file in `folder`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, str(folder)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        times = {"with plugin": [], "without": []}
        for _ in range(RUNS):
            times["with plugin"].append(run(folder))
            times["without"].append(run(folder, "-p", "no:derive_verify"))
    median = {k: statistics.median(v) for k, v in times.items()}
    for name, ts in times.items():
        print(f"{name:<12} median {median[name] * 1e3:7.0f} ms  best {min(ts) * 1e3:7.0f} ms")
    print(f"plugin cost: {(median['with plugin'] - median['without']) * 1e3:.0f} ms (median), "
          f"{(min(times['with plugin']) - min(times['without'])) * 1e3:.0f} ms (best)")


if __name__ == "__main__":
    main()
