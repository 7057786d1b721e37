"""Every rule's statement is true: its SymPy form (lhs, rhs) is checked numerically on random matrices — an identity
by evaluating both sides, a differential rule d(E) = R by a central difference of E along the differentials in R."""
import numpy as np
import pytest
import sympy as sp

from derive.core import rules
from derive.core.expr import Differential, ScalarDifferential

RULES = {**{f"{op.node.__name__}: {op.differential.name}": op.differential for op in rules.OPERATORS.values()},
         **{f"identity: {rule.name}": rule for rule in rules.IDENTITIES.values() if rule.form is not None}}
EPS = 1e-6


def evaluate(e, env):
    """The number or array e is at the values `env` {symbol: value}, by SymPy."""
    out = e.xreplace(env).doit()
    out = out.as_explicit() if isinstance(out, sp.MatrixExpr) else out
    return np.array(sp.N(out).tolist() if isinstance(out, sp.MatrixBase) else sp.N(out), dtype=float)


def differentials(e):
    return [n for n in sp.preorder_traversal(e) if isinstance(n, (Differential, ScalarDifferential))]


@pytest.mark.parametrize("name", RULES)
def test_rule_statement_holds_on_random_matrices(name):
    lhs, rhs = RULES[name].form()
    rng = np.random.default_rng(0)
    symbols = (lhs.free_symbols | rhs.free_symbols) - {n for d in differentials(lhs) + differentials(rhs) for n in ()}
    env = {}
    for s in sorted(symbols, key=str):
        if isinstance(s, sp.MatrixSymbol):
            # well conditioned, positive determinant: inverses and log-determinants are defined
            value = rng.normal(scale=0.5, size=s.shape) + (3 * np.eye(s.rows) if s.rows == s.cols else 0)
            env[s] = sp.ImmutableMatrix(value)
        else:
            env[s] = sp.Float(rng.uniform(0.5, 1.5))
    if isinstance(lhs, (Differential, ScalarDifferential)):
        # d(E) along the directions: (E(v + εD) − E(v − εD)) / 2ε, each variable moved along its differential
        moved = {n.arg for n in differentials(rhs)}
        direction = {m: (sp.ImmutableMatrix(rng.normal(size=m.shape)) if m.is_Matrix else sp.Float(rng.normal()))
                     for m in sorted(moved, key=str)}
        E = lhs.arg
        plus = evaluate(E, {**env, **{m: env[m] + EPS * D for m, D in direction.items()}})
        minus = evaluate(E, {**env, **{m: env[m] - EPS * D for m, D in direction.items()}})
        expected = (plus - minus) / (2 * EPS)
        got = evaluate(rhs.xreplace({n: direction[n.arg] for n in differentials(rhs)}), env)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-7), (name, got, expected)
    else:
        fixed = {n: sp.ImmutableMatrix(rng.normal(size=n.shape)) if n.is_Matrix else sp.Float(rng.normal())
                 for n in differentials(lhs) + differentials(rhs)}
        assert np.allclose(evaluate(lhs.xreplace(fixed), env), evaluate(rhs.xreplace(fixed), env), rtol=1e-10), name


def test_every_operator_rule_and_identity_has_a_checked_statement():
    assert all(op.differential.form is not None for op in rules.OPERATORS.values())
    assert len(RULES) >= 20


def test_a_false_statement_is_caught():
    """The check can fail: tr(AB) = tr(AᵀB) is not an identity."""
    A, B = rules.A, rules.B
    with pytest.raises(AssertionError):
        broken = rules.Rule("broken", "", lambda: (sp.Trace(A * B), sp.Trace(A.T * B)))
        RULES["broken"] = broken
        try:
            test_rule_statement_holds_on_random_matrices("broken")
        finally:
            del RULES["broken"]


OPERATOR_RULES = {f"{op.node.__name__}: {op.differential.name}": op.differential for op in rules.OPERATORS.values()}


@pytest.mark.parametrize("name", OPERATOR_RULES)
def test_rule_code_computes_its_statement(name):
    """The rule applied to the statement's own expression gives the statement's right-hand side (numerically): the
    code and the printed statement cannot drift apart. Each differential dE in the result is E's derivative along
    the directions (central differences), so rules that leave d of a composite are checked too."""
    rule = OPERATOR_RULES[name]
    lhs, rhs = rule.form()
    rng = np.random.default_rng(1)
    env = {s: (sp.ImmutableMatrix(rng.normal(scale=0.5, size=s.shape) + (3 * np.eye(s.rows) if s.rows == s.cols else 0))
               if isinstance(s, sp.MatrixSymbol) else sp.Float(rng.uniform(0.5, 1.5)))
           for s in sorted(lhs.free_symbols | rhs.free_symbols, key=str)}
    moved = {n.arg for n in differentials(rhs)}
    direction = {m: (sp.ImmutableMatrix(rng.normal(size=m.shape)) if m.is_Matrix else sp.Float(rng.normal()))
                 for m in sorted(moved, key=str)}

    def along(e):
        """e with each differential dE replaced by E's derivative along the directions."""
        values = {}
        for n in differentials(e):
            plus = evaluate(n.arg, {**env, **{m: env[m] + EPS * D for m, D in direction.items()}})
            minus = evaluate(n.arg, {**env, **{m: env[m] - EPS * D for m, D in direction.items()}})
            change = (plus - minus) / (2 * EPS)
            values[n] = sp.ImmutableMatrix(change) if n.arg.is_Matrix else sp.Float(float(change))
        return evaluate(e.xreplace(values), env)

    got = rule.apply(lhs.arg, lambda node: bool(node.free_symbols & moved))
    assert np.allclose(along(got), along(rhs), rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize("name", ["half_sse", "mse", "bce", "softmax_ce"])
def test_each_built_in_loss_matrix_form_is_the_sum_of_its_per_entry_loss(name):
    """The trace form documents show and ℓ(a, y) that verify reads are one loss: equal on random entries."""
    from derive.core.registry import LOSSES
    entry = LOSSES[name]
    rng = np.random.default_rng(2)
    A, Y = (sp.MatrixSymbol(k, 3, 2) for k in "AY")
    a, y = rng.uniform(0.1, 0.9, size=(3, 2)), rng.uniform(0.1, 0.9, size=(3, 2))
    from verify import exact
    matrix = sp.N(exact.explicit(entry.total(A, Y, 3), {"A": sp.ImmutableMatrix(a), "Y": sp.ImmutableMatrix(y)}))
    summed = sum(float(entry.per_entry(sp.Float(p), sp.Float(q))) for p, q in zip(a.ravel(), y.ravel()))
    assert np.isclose(float(matrix), summed / (3 if entry.per_output else 1), rtol=1e-12)


# ---- every cited rule fits its step ------------------------------------------------------------------------------

from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction  # noqa: E402
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct  # noqa: E402
from sympy.matrices.expressions.matexpr import MatrixElement  # noqa: E402

from derive.cli.examples import EXAMPLES  # noqa: E402
from derive.core.expr import LogDet  # noqa: E402
from derive.core.functions import Softmax  # noqa: E402


def _scalars(node):
    return [f for f in node.args if not f.is_Matrix]


def _trace_factors(e):
    """The matrix factors under tr of c·tr(P Q …), or None."""
    traces = [n for n in sp.preorder_traversal(e) if isinstance(n, sp.Trace)]
    if len(traces) != 1:
        return None
    arg = traces[0].arg
    return list(arg.as_coeff_matrices()[1]) if isinstance(arg, sp.MatMul) else [arg]


def _rotation(a, b):
    return a is not None and b is not None and a != b and len(a) == len(b) and any(a[k:] + a[:k] == b
                                                                                   for k in range(len(a)))


def _adjoints(e):
    """e with its differentials as plain symbols: what a simplification of the adjoint may have touched."""
    return e.xreplace({D: sp.MatrixSymbol(f"_d{k}", *D.shape) if D.is_Matrix else sp.Symbol(f"_d{k}")
                       for k, D in enumerate(differentials(e))})


HADAMARD_OPS = (HadamardProduct, HadamardPower, ElementwiseApplyFunction)

# what the node a differential rule expands must be (the step's node), and what an identity's rewrite must show
DIFFERENTIAL = {
    "sum rule": (sp.MatAdd, sp.Add), "trace rule": sp.Trace, "transpose rule": sp.Transpose,
    "elementwise rule": ElementwiseApplyFunction, "softmax rule": Softmax, "Hadamard product rule": HadamardProduct,
    "Hadamard power rule": HadamardPower, "inverse rule": sp.Inverse, "determinant rule": sp.Determinant,
    "log-determinant rule": LogDet, "entry rule": MatrixElement, "scalar power rule": sp.Pow,
    "power rule": sp.MatPow, "definition": (sp.MatrixSymbol, sp.Symbol),
}
IDENTITY = {
    "cyclic trace": lambda s: _rotation(_trace_factors(s.before), _trace_factors(s.after)),
    "trace of transpose": lambda s: s.before.has(sp.Transpose) and _trace_factors(s.before) is not None,
    "trace of Hadamard": lambda s: s.before.has(HadamardProduct),
    "Hadamard algebra": lambda s: _adjoints(s.before).has(*HADAMARD_OPS) or _adjoints(s.after).has(*HADAMARD_OPS),
    "algebra": lambda s: not (_adjoints(s.before).has(*HADAMARD_OPS) or _adjoints(s.after).has(*HADAMARD_OPS)),
    "collect terms": lambda s: isinstance(s.before, sp.Add) and len(s.before.args) >= 2,
    "name the adjoint": lambda s: any(str(a).startswith("delta") for a in s.after.free_symbols),
    "trace is linear": lambda s: isinstance(s.before, sp.Mul) and isinstance(s.after, sp.Trace),
    "read off": lambda s: not s.after.has(Differential, ScalarDifferential),
    "linearity": lambda s: True, "entry as trace": lambda s: s.before.has(MatrixElement),
    # second order: d²f = tr(dGᵀ dX) starts it, and H is read off a dG with no differential left in H
    "second differential": lambda s: s.after.has(sp.Trace) and s.after.has(Differential),
    "identify the Hessian": lambda s: s.before.has(Differential) and not s.after.has(Differential),
}


def _fits(step):
    name, node = step.rule.name, step.node
    if name in DIFFERENTIAL:
        return isinstance(node, DIFFERENTIAL[name])
    if name == "constant factor":
        # c·X with a scalar c: one matrix factor (or one varying scalar factor), never a product of two varying ones
        return isinstance(node, (sp.Mul, sp.MatMul)) and len(differentials(step.after)) == 1
    if name in ("product rule", "scalar product rule"):
        return isinstance(node, (sp.MatMul, sp.Mul)) and len([f for f in node.args if f.is_Matrix or f.free_symbols]) >= 2
    return IDENTITY[name](step)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_step_of_every_example_cites_a_rule_that_fits_it(name):
    """d(−f) = −df is a constant factor, not a product rule; −tr X = tr(−X) is the trace being linear; a rewrite
    without ⊙ is plain algebra: each step's rule is checked against the node it expands or the rewrite it makes."""
    result = EXAMPLES[name].derive()
    for r in (result if isinstance(result, list) else [result]):
        for step in (*getattr(r, "first", ()), *r.steps):   # a Hessian: the gradient's steps, then dG's
            assert _fits(step), f"{name}: [{step.rule.name}] {step.before} = {step.after} (node {step.node})"


def test_a_misplaced_label_is_caught():
    from derive.engine.backward import Step
    result = EXAMPLES["seed004-two-layer"].derive()
    first = result.steps[0]   # d(−tr(…)) = −d tr(…): a constant factor
    assert first.rule.name == "constant factor" and _fits(first)
    assert not _fits(Step(rules.IDENTITIES["cyclic"], first.before, first.after, first.node))
    assert not _fits(Step(rules.OPERATORS[sp.MatMul].differential, first.before, first.after, sp.Trace(rules.X)))
