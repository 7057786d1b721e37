"""Median wall times for the benchmark tables: one function with a time limit, or several interleaved."""
import signal
import statistics
import time


class Timeout(Exception):
    pass


def timed(fn, limit=20, runs=3):
    """(result, median seconds over `runs`), or (None, reason) on a timeout or an exception."""
    def alarm(*_):
        raise Timeout
    signal.signal(signal.SIGALRM, alarm)
    times, result = [], None
    for _ in range(runs):
        signal.alarm(limit)
        try:
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        except Timeout:
            return None, f"> {limit} s"
        except Exception as e:  # SymPy's failures are part of the table
            return None, type(e).__name__
        finally:
            signal.alarm(0)
    return result, statistics.median(times)


def race(functions, rounds=3, calls=10, warmup=3, pause=0.05):
    """{name: [seconds per call]} of several functions timed in blocks of `calls`, the blocks interleaved round
    after round, so that a slow spell of a noisy machine falls on all of them alike. Before each block the
    machine rests `pause` seconds (the thread pools of the library timed before stop spinning) and the function
    runs `warmup` times untimed (its own thread pool and allocator caches are warm, as in a training loop)."""
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            time.sleep(pause)
            for _ in range(warmup):
                fn()
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def print_tables(rows, header, caption):
    """One table per statistic: `caption` (a format of {statistic}), the header, a rule, the rows {statistic: lines}."""
    for statistic, lines in rows.items():
        print(caption.format(statistic=statistic))
        print(header)
        print("-" * len(header))
        print("\n".join(lines))
        print()
