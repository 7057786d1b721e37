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


# ---- the conventions of a command-line tool (issue 25) ---------------------------------------------------------------

def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"derive {derive.__version__}"
    assert derive.__version__ not in ("", "0+unknown")   # the installed distribution's


def test_every_option_has_help():
    import argparse

    from derive.cli.main import parser
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in [("derive", top), *commands.items()]:
        for action in command._actions:
            assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}: no help"


def test_a_closed_pipe_ends_the_command_quietly():
    run = subprocess.Popen([sys.executable, "-m", "derive", "operators"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    first = run.stdout.readline()
    run.stdout.close()   # as `| head -1` does
    assert run.wait(timeout=120) == 0 and first.startswith("operators")
    assert run.stderr.read() == ""


@pytest.mark.parametrize("argv, named", [
    (["mlp", "2", "3", "1", "--weight-decay", "abc"], "--weight-decay: 'abc' is not a number"),
    (["mlp", "2", "3", "1", "--weight-decay", "nan"], "--weight-decay: 'nan' is not a finite number"),
    (["mlp", "2", "3", "1", "--trials", "two"], "--trials: 'two' is not a whole number"),
    (["mlp", "2", "3", "1", "--samples", "5-0"], "--samples: '5-0' is neither a positive integer nor a name"),
    (["mlp", "2", "x+1", "1"], "sizes: 'x+1' is neither a positive integer nor a name"),
    (["expr", "tr(X)", "--wrt", "X", "--shape", "X=2x2", "--shape", "X=3x3"], "--shape X= given more than once"),
    (["expr", "trace(X)", "--wrt", "X", "--shape", "X=2x2"], "did you mean 'tr'?"),
    (["expr", "tanhh(X)", "--wrt", "X", "--shape", "X=2x2"], "did you mean 'tanh'?"),
    (["mlp", "2", "3", "--loss", "softmax_ce", "--output", "sigmoid"], "give --output softmax"),
])
def test_a_bad_option_value_is_refused_naming_the_option(argv, named, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") <= 3, err


def test_softmax_cross_entropy_takes_a_softmax_output():
    from derive.core.functions import Softmax
    net = derive.mlp([3, 4, 2], activation="tanh", loss="softmax_ce")
    assert isinstance(net.layers[-1].A_def, Softmax) and not isinstance(net.layers[0].A_def, Softmax)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_run_replaces_its_folder_whole_and_a_failed_one_leaves_it_as_it_was(tmp_path, monkeypatch):
    import derive.cli.main as cli
    argv = ["mlp", "2", "3", "1", "--trials", "1", "--out", str(tmp_path), "--no-pdf", "--quiet"]
    assert main(argv) == 0
    folder = tmp_path / "network"
    (folder / "derivation.pdf").write_text("an earlier run's PDF")   # a file this run does not write
    assert main(argv) == 0
    assert "derivation.pdf" not in _files(folder) and "verification.txt" in _files(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("the writer broke")
    monkeypatch.setattr(cli, "write", broken)
    assert main([*argv[:3], "4", *argv[3:]]) == 2   # another network, whose run fails
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert _files(tmp_path) == ["network"]   # nothing half-written beside it


def test_progress_shows_long_steps_on_a_terminal_and_nothing_when_quiet(monkeypatch):
    import io

    from derive.cli import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(progress, "LONG", 0)
    shown, quiet, piped = Terminal(), Terminal(), io.StringIO()
    for stream, silent in ((shown, False), (quiet, True), (piped, False)):
        with progress.steps(quiet=silent, stream=stream)("deriving"):
            pass
    import re
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.getvalue())   # the terminal's colours and cursor moves
    assert re.search(r"✓ deriving \(\d+\.\d s\)", plain), plain   # the time it took, in tenths of a second
    assert quiet.getvalue() == "" and piped.getvalue() == ""
