"""verify cannot pass a wrong answer: a zeroed block, a sign flip, a factor 2 and a transposition injected into the
derived gradients, Hessians and Hessian-vector (Gauss–Newton) products of random networks and functions — deep,
vanishing-gradient networks included — fail every check that sees them, while the right answers pass.

MUTATION_EXAMPLES sets the number of examples of each property (default 12); MUTATION_LOG=<file> appends one line
per example ("<property> <caught> <injected> <equivalent>") for the mutation score.
"""
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import derive
import verify
from verify.report import _in_domain, _sympy, _within, shape_at
from verify.model import reference
from verify.numeric import rounding_floor, scale_of
from verify.second import _directions, _draw_product
from verify.strategies import block_networks, mlp_specs

from .networks import tables
from .test_blocks import build
from .test_fuzz import contexts, scalar_f

EXAMPLES = int(os.environ.get("MUTATION_EXAMPLES", "12"))
SETTINGS = dict(deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def row_major(H):
    """H with its vec order taken row by row: the Hessian of the transposed variable (K H K), for a square H."""
    n = int(round(np.sqrt(H.shape[0])))
    order = np.arange(H.shape[0]).reshape(n, -1).T.reshape(-1) if n * n == H.shape[0] else np.arange(H.shape[0])
    return H[np.ix_(order, order)]


MUTANTS = {
    "zeroed": lambda B, hessian=False: np.zeros_like(B),
    "sign flipped": lambda B, hessian=False: -B,
    "doubled": lambda B, hessian=False: 2 * B,
    # a transposed gradient; for a Hessian (symmetric: Hᵀ = H) the transposition of vec's order
    "transposed": lambda B, hessian=False: row_major(B) if hessian else np.transpose(B),
}


class Mutated:
    """A derived result whose program `program` returns block `key` mutated (key None: the whole array)."""

    def __init__(self, result, program, keys, mutant, hessian=False):
        self.result, self.program, self.keys, self.mutant, self.hessian = result, program, keys, mutant, hessian

    def specification(self):
        return self.result.specification()

    def numpy(self, what=None):
        fn = self.result.numpy(what) if what else self.result.numpy()
        if what != self.program:
            return fn

        def wrong(**kw):
            out = fn(**kw)
            if self.keys is None:
                return self.mutant(np.asarray(out))
            return {k: self.mutant(np.asarray(v), self.hessian and k == "hessian") if k in self.keys else v
                    for k, v in out.items()}
        return wrong


def equivalent(block, mutated, scale):
    """Whether a mutant changes less than float64 resolves at the result's scale, or less than the checks'
    tolerance (1e-6 of the block: a nearly symmetric gradient transposed), as an exact-zero block zeroed or a
    symmetric block transposed does: such a mutant is no mistake and is not counted as injected."""
    block, mutated = np.asarray(block, dtype=np.float64), np.asarray(mutated, dtype=np.float64)
    return block.shape == mutated.shape and float(np.max(np.abs(block - mutated), initial=0.0)) <= \
        max(rounding_floor(np.float64, scale), 1e-6 * scale_of([block]))


def score(name, caught, injected, skipped):
    if os.environ.get("MUTATION_LOG"):
        with open(os.environ["MUTATION_LOG"], "a") as log:
            log.write(f"{name} {caught} {injected} {skipped}\n")
    assert caught == injected


def _network_outputs(bp, program, seed):
    """The derived program's blocks at the first point verify draws for it (its seed, width 3, 3 samples), to tell
    equivalent mutants where verify looks."""
    rng = np.random.default_rng(seed)
    if program is not None:   # as check_products and assert_hvp_match draw
        inputs, params, _ = _draw_product(bp, program, rng, 3, 3, 0.1)
        return bp.numpy(program)(**inputs, **{f"V_{k}": v for k, v in _directions(params, rng).items()})
    model = reference(bp)   # as check and assert_gradients_match draw
    return bp.numpy()(**model.draw(rng), **model.scalars)


def network_mutants(net, programs=(None, "hvp", "gauss_newton"), seed=0):
    """(caught, injected, equivalent) over every mutant of every block of every program of a network: caught when both
    verify's report fails and its assertion raises."""
    bp = derive.backprop(net)
    caught = injected = skipped = 0
    for program in programs:
        outputs = _network_outputs(bp, program, seed)
        scale = scale_of(outputs.values())
        for key, block in outputs.items():
            for name, mutant in MUTANTS.items():
                if equivalent(block, mutant(np.asarray(block)), scale):
                    skipped += 1
                    continue
                injected += 1
                wrong = Mutated(bp, program, {key}, mutant)
                if program is None:
                    report = verify.check(wrong, trials=1, exact_proof=False, seed=seed)
                    assertion = lambda: verify.assert_gradients_match(wrong.numpy(), net, trials=1,  # noqa: E731
                                                                      seed=seed)
                else:
                    report = verify.check_products(wrong, program, trials=1, seed=seed)
                    assertion = lambda: verify.assert_hvp_match(wrong.numpy(program), net, kind=program,  # noqa: E731
                                                                trials=1, seed=seed)
                try:
                    assertion()
                    raised = False
                except AssertionError:
                    raised = True
                caught += (not report.passed) and raised
                assert not report.passed and raised, (program, key, name, str(report))
    return caught, injected, skipped


def _derivation_outputs(result, program):
    """The program's output at the first point verify.check draws (seed 0, width 3, where f is finite), to tell
    equivalent mutants."""
    spec = result.specification()
    args = spec["arguments"]
    dims = {s: 3 for a in args if a.is_Matrix for s in a.shape if s.is_Symbol}
    fn = result.numpy(program) if program else result.numpy()
    value = _sympy(spec["where"], spec["f"], args, dims)
    with np.errstate(all="ignore"):
        point = _in_domain(value, {str(a): shape_at(a, dims) for a in args}, np.random.default_rng(0))
        return fn(**point)


def function_mutants(result, programs, keys_of, hessian=False):
    """(caught, injected, equivalent) for a derivation: every mutant of the program's output fails verify.check."""
    caught = injected = skipped = 0
    for program in programs:
        out = _derivation_outputs(result, program)
        blocks = {None: out} if not isinstance(out, dict) else out
        scale = scale_of(blocks.values())
        for keys in keys_of(program):
            for name, mutant in MUTANTS.items():
                if all(equivalent(blocks[k], mutant(np.asarray(blocks[k]), hessian and k == "hessian"), scale)
                       for k in (keys or [None])):
                    skipped += 1
                    continue
                injected += 1
                # the exact proof reads the formula, not the program: the numeric checks must catch a mutant
                report = verify.check(Mutated(result, program, keys, mutant, hessian), trials=1, exact_proof=False)
                assert not report.passed, (program, keys, name, str(report))
                caught += 1
    return caught, injected, skipped


# ---- the cases ---------------------------------------------------------------------------------------------

DEEP = dict(sizes=[2] * 13, activation="sigmoid", loss="half_sse", samples=3)


def test_a_vanishing_gradient_is_checked_on_its_own_scale():
    net = derive.mlp(**DEEP)
    bp = derive.backprop(net)
    report = verify.check(bp, trials=1, exact_proof=False)
    W1 = [r for r in report.rows if r.parameter == "W1" and r.check == "recursion"][0]
    assert report.passed and W1.max_rel < 1e-12, str(report)
    for name, mutant in MUTANTS.items():
        wrong = Mutated(bp, None, {"W1"}, mutant)
        report = verify.check(wrong, trials=1, exact_proof=False)
        assert not report.passed and {r.parameter for r in report.failures()} == {"W1"}, (name, str(report))
        with pytest.raises(AssertionError, match="W1"):
            verify.assert_gradients_match(wrong.numpy(), net)
    verify.assert_gradients_match(bp.numpy(), net)


@pytest.mark.parametrize("kind", ["hvp", "gauss_newton"])
def test_a_vanishing_product_block_is_checked_on_its_own_scale(kind):
    net = derive.mlp(**DEEP)
    bp = derive.backprop(net)
    assert verify.check_products(bp, kind, trials=1).passed
    verify.assert_hvp_match(bp.numpy(kind), net, kind=kind, trials=1)
    for name in ("zeroed", "sign flipped"):
        wrong = Mutated(bp, kind, {"W1"}, MUTANTS[name])
        report = verify.check_products(wrong, kind, trials=1)
        assert not report.passed and {r.parameter for r in report.failures()} == {"W1"}, str(report)
        with pytest.raises(AssertionError, match="W1"):
            verify.assert_hvp_match(wrong.numpy(kind), net, kind=kind, trials=1)


def test_a_hessian_whose_gradient_is_wrong_too_fails():
    n = 3
    X, A = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, n)
    d = derive.hessian_derivation(sp.Trace(X.T * A * X) + sp.log(sp.det(X)), X)
    assert verify.check(d, trials=1).passed
    report = verify.check(Mutated(d, "gradient_and_hessian", {"gradient", "hessian"}, MUTANTS["doubled"]), trials=1)
    failed = {r.check for r in report.failures()}
    assert not report.passed and {"SymPy, entrywise", "finite differences"} <= failed, str(report)


NAN_NETWORKS = {
    "mlp": lambda: derive.mlp([3, 4, 2], activation="tanh", output="softmax", loss="softmax_ce"),
    "blocks": lambda: derive.Network(3, [derive.LayerNorm(), derive.Dense(2, "identity")], samples=4),
}


@pytest.mark.parametrize("network", sorted(NAN_NETWORKS))
@pytest.mark.parametrize("kind", ["hvp", "gauss_newton"])
def test_products_that_are_all_nan_fail(network, kind):
    net = NAN_NETWORKS[network]()
    bp = derive.backprop(net)
    keys = {P.name for P in bp.network.parameters}
    wrong = Mutated(bp, kind, keys, lambda B, hessian=False: np.full(np.shape(B), np.nan))
    with pytest.raises(AssertionError, match="non-finite"):
        verify.assert_hvp_match(wrong.numpy(kind), net, kind=kind, trials=1)
    report = verify.check_products(wrong, kind, trials=1)
    assert not report.passed and len(report.failures()) == len(report.rows), str(report)


def test_gradients_that_are_nan_fail():
    net = derive.mlp([2, 3, 1], activation="tanh", loss="half_sse")
    wrong = Mutated(derive.backprop(net), None, {"W1"}, lambda B, hessian=False: np.full(np.shape(B), np.nan))
    assert not verify.check(wrong, trials=1, exact_proof=False).passed
    with pytest.raises(AssertionError, match="non-finite"):
        verify.assert_gradients_match(wrong.numpy(), net)


# ---- mutation tests over random networks and functions -------------------------------------------------------------

@pytest.mark.slow
@settings(max_examples=max(3, EXAMPLES // 2), **SETTINGS)   # ~4 s each: three programs, every block
@given(mlp_specs(*tables(), max_depth=3, max_width=3, samples=(2,)), st.booleans(), st.integers(0, 2 ** 16))
def test_every_mutant_of_a_random_network_fails(spec, deep, seed):
    if deep:   # 8 to 12 sigmoid layers of width 2: the first layers' gradients vanish
        depth = 8 + seed % 5
        spec = {**spec, "sizes": [2] * (depth + 1), "activation": ["sigmoid"] * (depth - 1)}
        if spec["output"] == "softmax":
            spec["output"] = "sigmoid" if spec["loss"] != "softmax_ce" else "softmax"
    net = derive.mlp(**spec)
    assume(verify.check(derive.backprop(net), trials=1, exact_proof=False, seed=seed).passed)
    score("network", *network_mutants(net, seed=seed))


@settings(max_examples=max(3, EXAMPLES // 3), **SETTINGS)
@given(block_networks(max_blocks=2))
def test_every_mutant_of_a_random_block_network_fails(plain):
    net = build(plain)
    report = verify.check(derive.backprop(net), trials=1)
    assert report.passed, str(report)
    score("blocks", *network_mutants(net, programs=(None, "hvp")))


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(ctx=contexts(), data=st.data())
def test_every_mutant_of_a_random_function_fails(ctx, data):
    f, _ = scalar_f(ctx, data.draw, 1)   # depth 1: SymPy evaluates f at every point of every mutant
    assume(ctx.X in f.free_symbols and not ctx.sizes)
    kind = data.draw(st.sampled_from(["gradient", "hessian", "hvp"]))
    if kind == "gradient":
        d = derive.derivation(f, ctx.X)
        programs, keys_of = (None,), lambda program: [None]
    elif kind == "hessian":
        d = derive.hessian_derivation(f, ctx.X)
        programs = ("gradient_and_hessian",)
        keys_of = lambda program: [{"hessian"}, {"gradient"}, {"gradient", "hessian"}]  # noqa: E731
    else:
        d = derive.hvp_derivation(f, ctx.X, sp.MatrixSymbol("V_direction", *ctx.X.shape))
        programs = ("gradient_and_hvp",)
        keys_of = lambda program: [{"hvp"}, {"gradient"}]  # noqa: E731
    # SymPy's explicit evaluation of a drawn f can run for minutes (factoring under some hash orders): such an f is
    # dropped, not waited for; the mutants are checked at the same points, whose values SymPy then remembers
    report = _within(EXPLICIT_SECONDS, lambda: verify.check(d, trials=1, exact_proof=False))
    assume(report is not None and report.rows and report.passed)   # a point in f's domain away from kinks
    score(f"function-{kind}", *function_mutants(d, programs, keys_of, hessian=kind == "hessian"))


EXPLICIT_SECONDS = 30   # the longest a random function's first check may take


# ---- from an adversarial pass over verify ----------------------------------------------------------------------------

def _wrapped(result, program, wrap):
    """result with its program `program` (None: the default) replaced by wrap(the real one)."""
    class Wrapped(Mutated):
        def numpy(self, what=None):
            fn = result.numpy(what) if what else result.numpy()
            return wrap(fn) if what == program else fn
    return Wrapped(result, program, None, None)


def test_a_program_that_changes_its_inputs_cannot_move_the_reference():
    bp = derive.backprop(derive.mlp([3, 4, 2], activation="tanh", loss="half_sse"))
    doubled = lambda fn: lambda **kw: (kw["X"].__imul__(2), fn(**kw))[1]  # noqa: E731  X ← 2X, gradients at 2X
    assert not verify.check(_wrapped(bp, None, doubled), exact_proof=False).passed
    assert not verify.check_products(_wrapped(bp, "hvp", doubled), "hvp").passed


def test_the_point_is_chosen_by_f_alone_and_a_scalar_is_no_matrix():
    X = sp.MatrixSymbol("X", 3, 3)
    d = derive.derivation(sp.Trace(X.T * X), X)
    nan_below_zero = lambda fn: lambda **kw: np.exp(np.log(2 * kw["X"]))  # noqa: E731  2X where X > 0, NaN elsewhere
    assert not verify.check(_wrapped(d, None, nan_below_zero)).passed
    assert not verify.check(_wrapped(d, None, lambda fn: lambda **kw: 1.0)).passed


def test_a_lower_precision_answer_earns_no_looser_check():
    net = derive.mlp([3, 4, 2], activation="tanh", loss="half_sse")
    fn = derive.backprop(net).numpy()
    rough = lambda **kw: {k: (1.2 * v).astype(np.float16) for k, v in fn(**kw).items()}  # noqa: E731
    with pytest.raises(AssertionError, match="W"):
        verify.assert_gradients_match(rough, net)


def test_no_trials_is_refused_everywhere():
    net = derive.mlp([2, 2], activation="tanh", loss="half_sse")
    bp, X = derive.backprop(net), sp.MatrixSymbol("X", 2, 2)
    for call in (lambda: verify.check(bp, trials=0), lambda: verify.check_products(bp, trials=0),
                 lambda: verify.assert_gradients_match(bp.numpy(), net, trials=0),
                 lambda: verify.assert_hvp_match(bp.numpy("hvp"), net, trials=0),
                 lambda: verify.check(derive.hessian_derivation(sp.Trace(X * X), X), trials=0)):
        with pytest.raises(ValueError, match="trials"):
            call()


def test_an_inconclusive_hessian_row_is_not_outvoted_by_its_symmetry():
    """f = 1e10·tr X + tr(XᵀX)/2: the gradient's differences are too rough for the Hessian at ε; a doubled Hessian
    must not pass on the symmetry row (the program against itself) or the exact row (the formula)."""
    X = sp.MatrixSymbol("X", 2, 2)
    d = derive.hessian_derivation(10 ** 10 * sp.Trace(X) + sp.Trace(X.T * X) / 2, X)
    doubled = Mutated(d, "gradient_and_hessian", {"hessian"}, MUTANTS["doubled"], hessian=True)
    assert not verify.check(doubled, trials=1).passed
