"""The command line and the expression parser: results, exit codes, and errors with a caret."""
import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.main import main
from derive.core.parser import ParseError, parse, parse_shape
from verify import central_difference, relative_error

SHAPES = {"A": ("3", "3"), "B": ("3", "3"), "X": ("3", "3"), "C": ("2", "3"), "t": None}


@pytest.mark.parametrize("text, book", [
    # Matrix Cookbook eq. 101 and 115, and a Hadamard/elementwise case; each against finite differences
    ("tr(A*X*B)", lambda A, B, X, t: A.T @ B.T),
    ("norm2(X)", lambda A, B, X, t: 2 * X),
    ("sum(A .* exp(X)) + t*tr(X')", lambda A, B, X, t: A * np.exp(X) + t * np.eye(3)),
])
def test_parsed_expressions_differentiate_to_the_book_formula(text, book):
    f = parse(text, SHAPES)
    X = parse("X", SHAPES)
    A, B, t = parse("A", SHAPES), parse("B", SHAPES), sp.Symbol("t")
    rng = np.random.default_rng(0)
    v = {"A": rng.normal(size=(3, 3)), "B": rng.normal(size=(3, 3)), "X": rng.normal(size=(3, 3)), "t": 0.7}
    G = derive.lambdify([A, B, X, t], derive.gradient(f, X))(v["A"], v["B"], v["X"], v["t"])
    G = np.broadcast_to(G, (3, 3))
    fn = derive.lambdify([A, B, X, t], f)
    fd = central_difference(lambda **w: fn(w["A"], w["B"], w["X"], w["t"]), v, "X")
    assert relative_error(G, book(**v)) < 1e-10 and relative_error(G, fd) < 1e-6


@pytest.mark.parametrize("text, message, column", [
    ("tr(A*X*B", "expected '\\)'", 8),
    ("A*X +* B", "expected a number, a name", 5),
    ("tr(A*Q)", "unknown name 'Q'", 5),
    ("__import__('os')", "unknown name '__import__'", 0),
    ("A .* B'*Q", "unknown name 'Q'", 8),
    ("A .* B'*C", "matrix product of shapes 3×3 and 2×3", 7),
    ("C^2", "a matrix power needs a square matrix", 1),
    ("tr(A*X) $", "unexpected character '\\$'", 8),
])
def test_syntax_errors_point_at_the_position(text, message, column):
    with pytest.raises(ParseError, match=message) as info:
        parse(text, SHAPES)
    assert info.value.position == column
    assert str(info.value).endswith("\n  " + " " * column + "^")


def test_shape_errors_name_both_shapes():
    shapes = {"A": ("2", "3"), "X": ("2", "3")}
    with pytest.raises(ParseError, match="matrix product of shapes 2×3 and 2×3"):
        parse("tr(A*X)", shapes)
    with pytest.raises(ParseError, match="tr needs a square matrix, got shape 2×3"):
        parse("tr(A .* X)", shapes)
    assert parse_shape("X=n×n") == ("X", ("n", "n"))
    with pytest.raises(ValueError, match="expected NAME=ROWSxCOLS"):
        parse_shape("X=3")


def test_cli_expr_mlp_and_exit_codes(tmp_path, capsys):
    assert main(["expr", "tr(A*X*B)", "--wrt", "X", "--shape", "A=3x3", "--shape", "B=3x3", "--shape", "X=3x3"]) == 0
    assert "∂f/∂X = Aᵀ Bᵀ" in capsys.readouterr().out
    assert main(["expr", "tr(A*X", "--wrt", "X", "--shape", "A=3x3", "--shape", "X=3x3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: cannot parse") and "Traceback" not in err
    assert main(["mlp", "3", "4", "2", "--activation", "tanh", "--output", "softmax", "--loss", "softmax_ce",
                 "--layout", "AW", "--name", "small", "--out", str(tmp_path), "--no-pdf"]) == 0
    out = capsys.readouterr().out
    assert "δ2 = 1/m ((Y (1 1ᵀ)) ⊙ A2 - Y)" in out and "verification: PASSED" in out
    assert {p.name for p in (tmp_path / "small").iterdir()} >= {"derivation.tex", "derivation.html", "gradients.py",
                                                                "verification.txt", "verification.json"}
    assert main(["mlp", "3", "2", "--output", "relu", "--loss", "bce", "--out", str(tmp_path), "--no-pdf"]) == 2
    assert "layer 1: loss 'bce'" in capsys.readouterr().err


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALPHABET = list("AXBCt()+-*/'^.,o⊙ 0123$_") + ["tr(", "det(", "logdet(", "inv(", "sum(", "norm2(", "exp(", "log(",
                                               "sigmoid(", "relu(", ".*", ".T", "__import__('os').system('ls')"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=14).map("".join))
def test_random_text_only_ever_raises_parse_error(text):
    try:
        parse(text, SHAPES)
    except ParseError as e:
        assert 0 <= e.position <= len(text)


def test_precedence_and_every_operator():
    A, B, X = (parse(k, SHAPES) for k in "ABX")
    assert parse("A*B'", SHAPES) == derive.core.expr.matmul(A, B.T)
    assert parse("(A*B)'", SHAPES) == derive.core.expr.tp(derive.core.expr.matmul(A, B))
    assert parse("A + B*X", SHAPES) == derive.core.expr.matadd(A, derive.core.expr.matmul(B, X))
    assert parse("A .* B", SHAPES) == parse("A ⊙ B", SHAPES) == parse("A o B", SHAPES) == sp.HadamardProduct(A, B)
    assert parse("X.T", SHAPES) == parse("X'", SHAPES) == X.T
    assert parse("X^2", SHAPES) == sp.MatPow(X, 2)
    assert parse("-A", SHAPES) == derive.core.expr.matmul(-1, A)
    assert parse("tr(X)/2", SHAPES) == sp.Trace(X) / 2
    assert parse("det(X)", SHAPES) == sp.Determinant(X) and parse("inv(X)", SHAPES) == sp.Inverse(X)
    assert parse("logdet(X)", SHAPES) == sp.log(sp.Determinant(X))
    assert parse("tanh(X)", SHAPES) == derive.core.functions.apply(sp.tanh, X)


import subprocess  # noqa: E402
import sys  # noqa: E402

from verify import Spec, data, recursion  # noqa: E402


def _derive(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "derive", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.slow
def test_subprocess_every_command(tmp_path):
    run = _derive("examples", "--out", "output", "--no-pdf", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "output" / "seed004-two-layer" / "derivation.html").exists()
    spec = tmp_path / "net.toml"
    spec.write_text('name = "net"\nsizes = [3, 5, 2]\nactivation = "tanh"\noutput = "sigmoid"\nloss = "bce"\n'
                    'layout = "WtA"\n[notation]\ntranspose = "T"\n')
    run = _derive("run", str(spec), "--no-pdf", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "verification: PASSED" in run.stdout and "^{T}" in (tmp_path / "output/net/derivation.tex").read_text()
    # the written module imports on its own and matches the recursion
    net = derive.mlp([3, 5, 2], activation="tanh", output="sigmoid", loss="bce", layout="WtA")
    X, Y, params = data.draw(net, np.random.default_rng(0), data.dimensions(net))
    sys.path.insert(0, str(tmp_path / "output" / "net"))
    try:
        import gradients as module
        got = module.gradients(X=X, Y=Y, **params)
    finally:
        sys.path.pop(0)
        sys.modules.pop("gradients", None)
    for name, G in recursion.gradients(Spec.of(net), X, Y, params).items():
        assert np.allclose(got[name], G, rtol=1e-10, atol=1e-12)
    spec.write_text('sizes = [3, 2]\ncolour = "red"\n')
    run = _derive("run", str(spec), cwd=tmp_path)
    assert run.returncode == 2 and "unknown key 'colour'" in run.stderr and "Traceback" not in run.stderr
    run = _derive("expr", "logdet(X)", "--wrt", "X", "--shape", "X=3x3", cwd=tmp_path)
    assert run.returncode == 0 and "PASSED" in run.stdout
    for command in ("examples", "mlp", "run", "expr"):
        run = _derive(command, "--help", cwd=tmp_path)
        assert run.returncode == 0 and "example" in run.stdout


def test_sections_switch_the_index_form_and_the_algorithm(tmp_path):
    from derive.cli.main import main as cli

    assert cli(["mlp", "3", "4", "2", "--name", "a", "--out", str(tmp_path), "--no-pdf"]) == 0
    assert cli(["mlp", "3", "4", "2", "--name", "b", "--out", str(tmp_path), "--no-pdf", "--sections", ""]) == 0
    full, bare = ((tmp_path / k / "derivation.tex").read_text(encoding="utf-8") for k in "ab")
    assert "Index form" in full and "The algorithm" in full
    assert "Index form" not in bare and "The algorithm" not in bare
    assert cli(["mlp", "3", "4", "2", "--name", "c", "--out", str(tmp_path), "--no-pdf", "--sections", "indx"]) == 2
