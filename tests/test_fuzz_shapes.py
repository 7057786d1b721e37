"""Fuzzer: symbolic sizes that disagree. A random scalar function of symbolic sizes n and m (tests/test_fuzz.py's
strategies) with one occurrence of one matrix given a fresh size k in place of n or m: every size of a matrix in a
scalar is matched with another one (a product's inner sizes, a sum's, a trace's), so the gradient and lambdify must
raise derive.ShapeError naming k and the size it replaced, never return.

FUZZ_SHAPES_EXAMPLES sets the number of examples (default 30).
"""
import os
import re

import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
from tests.test_fuzz import SETTINGS, Context, scalar_f

EXAMPLES = int(os.environ.get("FUZZ_SHAPES_EXAMPLES", "30"))
k = sp.Symbol("k", integer=True, positive=True)


def occurrences(e, path=()):
    """The paths (argument indices from the root) of every matrix symbol in e, as a tree (a shared node once per
    use)."""
    if isinstance(e, sp.MatrixSymbol):
        return [path]
    return [p for i, a in enumerate(e.args) if isinstance(a, sp.Basic) for p in occurrences(a, (*path, i))]


def replaced(e, path, new):
    """e with the node at path replaced by new, the nodes above it rebuilt (without SymPy's integer size checks,
    which do not concern symbols)."""
    if not path:
        return new
    args = list(e.args)
    args[path[0]] = replaced(args[path[0]], path[1:], new)
    return e.func(*args)


def node_at(e, path):
    for i in path:
        e = e.args[i]
    return e


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(data=st.data(), n_value=st.sampled_from([2, 3]), m_value=st.sampled_from([2, 3]),
       x_cols=st.sampled_from(["N", "M"]), entry=st.sampled_from(["gradient", "lambdify"]))
def test_one_size_swapped_for_another_symbol_is_a_shape_error(data, n_value, m_value, x_cols, entry):
    draw = data.draw
    ctx = Context(True, n_value, m_value, x_cols)
    f, _ = scalar_f(ctx, draw, draw(st.integers(1, 3)))
    # an entry X[i, j] of a larger matrix matches none of its sizes: only entries of 1×1 matrices (1ᵀ E 1)
    assume(all(e.parent.shape == (1, 1) for e in f.atoms(MatrixElement)))
    paths = occurrences(f)
    assume(paths)
    path = draw(st.sampled_from(paths))
    S = node_at(f, path)
    axes = [a for a in (0, 1) if S.shape[a] in (ctx.n, ctx.m)]
    assume(axes)
    axis = draw(st.sampled_from(axes))
    old = S.shape[axis]
    shape = list(S.shape)
    shape[axis] = k
    try:
        g = replaced(f, path, sp.MatrixSymbol(S.name, *shape))
    except Exception:   # SymPy itself refuses to build it (an inverse of n × k): nothing reaches derive
        assume(False)
    with pytest.raises(derive.ShapeError) as error:
        if entry == "gradient":
            derive.gradient(g, ctx.X)
        else:
            derive.lambdify(sorted(g.free_symbols, key=str), g)
    message = str(error.value)
    assert re.search(r"does not conform|not square", message), message
    assert re.search(rf"\b{k}\b", message) and re.search(rf"\b{old}\b", message), (message, old)
