"""Median wall time of a function with a time limit, for the benchmark tables."""
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
