"""Central finite differences and error measures, written without reference to `derive`."""
import numpy as np


def central_difference(f, values, name, eps=1e-6):
    """∂f/∂values[name] by central differences, entry by entry: (f(x + εe) − f(x − εe)) / 2ε."""
    x = np.array(values[name], dtype=float)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        plus = f(**{**values, name: x + step})
        minus = f(**{**values, name: x - step})
        grad[index] = (float(np.squeeze(plus)) - float(np.squeeze(minus))) / (2 * eps)
    return grad


def relative_error(actual, expected):
    """max |actual − expected| / max(1, max |expected|)."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape} differs from expected shape {expected.shape}")
    return float(np.max(np.abs(actual - expected), initial=0.0) / max(1.0, np.max(np.abs(expected), initial=0.0)))
