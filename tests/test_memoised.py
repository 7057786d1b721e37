"""What is memoised (the scalar derivative of an activation, a result's chains) gives what is computed afresh, and
never one function's result for another's: two functions of one name, a user Lambda, an activation registered again
under a name used before, symbols that differ only in their assumptions."""
import pytest
import sympy as sp

import derive
from derive.codegen import program as codegen
from derive.core import registry
from derive.core.functions import ELT, body_of, defined, derivative, leaky_relu, relu, sigmoid
from derive.networks import textbook


@pytest.mark.parametrize("body, by_hand", [
    (sigmoid(ELT), lambda x: sp.exp(-x) / (1 + sp.exp(-x)) ** 2),
    (sp.tanh(ELT), lambda x: 1 - sp.tanh(x) ** 2),
    (leaky_relu(ELT, sp.Rational(1, 100)), lambda x: sp.Rational(1, 100) + sp.Rational(99, 100) * sp.Heaviside(x, 0)),
    (relu(ELT), lambda x: sp.Heaviside(x, 0)),
    (sp.Abs(ELT), lambda x: sp.sign(x)),
])
def test_the_memoised_derivative_is_the_derivative_every_time(body, by_hand):
    x = sp.Symbol("x", real=True)
    for _ in range(2):   # computed, then remembered
        got = derivative(body, ELT).xreplace({ELT: x})
        assert sp.simplify((got - by_hand(x)).rewrite(sp.exp)) == 0
    assert derivative(body, ELT) == derivative.__wrapped__(body, ELT)


def test_two_functions_of_one_name_and_a_lambda_do_not_share_a_derivative():
    """Classes of one name hash alike (SymPy hashes the class name); the memo must tell them apart."""
    square, cube = defined("act", lambda x: x ** 2), defined("act", lambda x: x ** 3)
    y = sp.Symbol("y")
    for _ in range(2):
        assert derivative(square(ELT), ELT) == 2 * ELT
        assert derivative(cube(ELT), ELT) == 3 * ELT ** 2
        assert derivative(body_of(sp.Lambda(y, y ** 2 + 1)), ELT) == 2 * ELT
        assert derivative(body_of(sp.Lambda(y, y ** 3 + 1)), ELT) == 3 * ELT ** 2


def test_symbols_that_differ_only_in_assumptions_do_not_share_a_derivative():
    positive, real = sp.Symbol("x", positive=True), sp.Symbol("x", real=True)
    for _ in range(2):
        assert derivative(sp.Abs(positive), positive) == 1
        assert derivative(sp.Abs(real), real) == sp.sign(real)


@pytest.mark.parametrize("function", [lambda x: x ** 3 + x, sp.sin])
def test_an_activation_registered_again_under_a_used_name_derives_its_own_derivative(function):
    """Each registration under the name "again" (the one of the test before included) is checked by central
    differences, after the other's derivative was memoised."""
    import verify

    registry.ACTIVATIONS.pop("again", None)
    derive.register_activation("again", function)
    try:
        result = derive.backprop(derive.mlp([2, 1, 1], activation="again", samples=1))
        assert verify.check(result, trials=1).passed
        x = sp.Symbol("x", real=True)
        assert sp.simplify(derivative(registry.activation("again").body, ELT).xreplace({ELT: x})
                           - sp.diff(function(x), x)) == 0
    finally:
        registry.ACTIVATIONS.pop("again")


def test_a_network_derived_with_the_memo_cleared_warm_and_unmemoised_is_derived_alike(monkeypatch):
    def derived():
        result = derive.backprop(derive.mlp([3, 2, 2, 2, 1], activation="sigmoid", samples=2))
        return result.deltas, result.gradients, str(result)

    derivative.cache_clear()
    cold, warm = derived(), derived()
    for module in ("derive.core.hadamard", "derive.core.rules", "derive.networks.textbook"):
        monkeypatch.setattr(f"{module}.derivative", derivative.__wrapped__)
    assert cold == warm == derived()


def _count(monkeypatch, name):
    """A counter of the calls of textbook.<name> from now on."""
    calls = []
    original = getattr(textbook, name)
    monkeypatch.setattr(textbook, name, lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls


@pytest.mark.parametrize("network, builder", [
    (lambda: derive.mlp([3, 2, 2, 1], activation="tanh", samples=2), "hidden_chain"),
    (lambda: derive.Network(3, [derive.Residual([derive.LayerNorm(), derive.Dense(3, "relu")]),
                                derive.Dense(2, "identity")], layout="AW", samples=2), "definition_chain"),
])
def test_write_builds_the_chains_once(network, builder, monkeypatch, tmp_path):
    calls = _count(monkeypatch, builder)
    once = textbook.textbook.__wrapped__(derive.backprop(network()))
    built = len(calls)
    assert built > 0
    calls.clear()
    programs = []
    original = codegen.program
    monkeypatch.setattr(codegen, "program", lambda *args, **kwargs: programs.append(1) or original(*args, **kwargs))
    result = derive.backprop(network())
    derive.write(result, tmp_path, pdf=False)
    assert len(calls) == built
    assert len(programs) == len(result.PROGRAMS)   # the module's, the document's algorithm read one of them
    assert textbook.textbook(result) == once   # and what is kept is what is built afresh
    assert all(result.program(what) == type(result)._program.__wrapped__(result, what) for what in result.PROGRAMS)


def test_each_result_keeps_its_own_chains():
    sig, tanh = (derive.backprop(derive.mlp([3, 2, 2, 1], activation=a, samples=2)) for a in ("sigmoid", "tanh"))
    assert textbook.textbook(sig) != textbook.textbook(tanh)
    assert textbook.textbook(sig) == textbook.textbook.__wrapped__(sig)
    assert textbook.textbook(tanh) == textbook.textbook.__wrapped__(tanh)
