"""The command line and the expression parser: results, exit codes, and errors with a caret."""
import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli import main
from derive.parser import ParseError, parse, parse_shape
from verify import central_difference, relative_error

SHAPES = {"A": ("3", "3"), "B": ("3", "3"), "X": ("3", "3"), "t": None}


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
    fn = derive.lambdify([A, B, X, t], f)
    fd = central_difference(lambda **w: fn(w["A"], w["B"], w["X"], w["t"]), v, "X")
    assert relative_error(G, book(**v)) < 1e-10 and relative_error(G, fd) < 1e-6


@pytest.mark.parametrize("text, message, column", [
    ("tr(A*X*B", "expected '\\)'", 8),
    ("A*X +* B", "expected a number, a name", 5),
    ("tr(A*Q)", "unknown name 'Q'", 5),
    ("__import__('os')", "unknown name '__import__'", 0),
    ("A .* B'*C", "unknown name 'C'", 8),
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
    assert "∂f/∂X = Aᵀ*Bᵀ" in capsys.readouterr().out
    assert main(["expr", "tr(A*X", "--wrt", "X", "--shape", "A=3x3", "--shape", "X=3x3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: cannot parse") and "Traceback" not in err
    assert main(["mlp", "3", "4", "2", "--activation", "tanh", "--output", "softmax", "--loss", "softmax_ce",
                 "--layout", "AW", "--name", "small", "--out", str(tmp_path), "--no-pdf"]) == 0
    out = capsys.readouterr().out
    assert "δ2 = 1/m*(A2 - Y)" in out and "verification: PASSED" in out
    assert {p.name for p in (tmp_path / "small").iterdir()} >= {"derivation.tex", "derivation.html", "gradients.py",
                                                                "verification.txt", "verification.json"}
    assert main(["mlp", "3", "2", "--output", "relu", "--loss", "bce", "--out", str(tmp_path), "--no-pdf"]) == 2
    assert "layer 1: loss 'bce'" in capsys.readouterr().err
