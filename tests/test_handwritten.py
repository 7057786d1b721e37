"""verify.check_derivation and `derive check`: derivations written by hand, checked row by row against verify's
recursion (independent of derive), with each classic mistake injected and named."""
import csv

import numpy as np
import pytest

import derive
import verify
from derive.cli.examples import EXAMPLES
from derive.cli.main import main
from derive.printing.latex import latex
from tests.handwritten.transcripts import SEEDS

def check(*args, **kwargs):
    """verify.check_derivation at the random points only (the exact proofs have their own tests, marked slow)."""
    return verify.check_derivation(*args, **{"exact": False, **kwargs})


MLP = derive.mlp([3, 4, 2], activation="sigmoid", samples="m")
SOFTMAX = derive.mlp([3, 4, 3], activation="relu", loss="softmax_ce", samples="m")


def first(report):
    error = report.first_error
    assert error is not None, str(report)
    return error


@pytest.mark.parametrize("name", SEEDS)
def test_each_seed_transcribed_in_its_own_notation_is_right(name):
    options, text, _ = SEEDS[name]
    report = check(text, EXAMPLES[name].build(), **options)
    assert report.passed, str(report)
    assert all(right for _, right in report.results) and report.results


@pytest.mark.parametrize("name, old, new, line, phrase", [
    (name, *mutation) for name, (_, _, mutations) in SEEDS.items() for mutation in mutations],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_each_classic_mistake_injected_into_a_seed_is_found_on_its_line_and_named(name, old, new, line, phrase):
    options, text, _ = SEEDS[name]
    assert old in text
    report = check(text.replace(old, new, 1), EXAMPLES[name].build(), **options)
    error = first(report)
    assert error.line == line, str(report)
    assert phrase in f"{error.mistake} {error.message}", str(report)
    assert not report.passed


def _results_in_latex(net):
    """derive's results for `net` as the documents print them, one aligned row each."""
    bp = derive.backprop(net)
    rows = [f"{latex(d)} &= {latex(E)}" for d, E in bp.deltas.items()]
    rows += [rf"\frac{{\partial L}}{{\partial {latex(bp.parameter(k))}}} &= {latex(G)}"
             for k, G in bp.gradients.items()]
    rows += [f"{latex(Z)} &= {latex(E)}" for Z, E in bp.forward.items()]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n"


DENSE = [name for name, ex in EXAMPLES.items()
         if isinstance(built := ex.build(), derive.Network) and built.dense_chain()]


@pytest.mark.parametrize("name", DENSE)
def test_the_latex_derive_prints_for_every_seed_network_reads_and_agrees_with_the_recursion(name):
    """derive's printed results against verify's closed-form recursion, through the reader: each row right, and the
    same rows with δ's σ′ taken at the activations are not."""
    net = EXAMPLES[name].build()
    text = _results_in_latex(net)
    report = check(text, net)
    assert report.passed, str(report)
    assert len(report.results) == len(derive.backprop(net).deltas) + len(net.parameters)


@pytest.mark.parametrize("layout", derive.LAYOUTS)
def test_every_layout_and_reduction(layout):
    for reduction in derive.REDUCTIONS:
        net = derive.mlp([2, 3, 2], activation="tanh", layout=layout, reduction=reduction, weight_decay=0.5)
        assert check(_results_in_latex(net), net).passed


def test_a_student_answer_in_the_toolkits_text_syntax():
    wrong = """delta2 = 1/m (A2 - Y) .* sigma'(Z2)
delta1 = (W2' * delta2) .* sigma'(A1)
dL/dW1 = delta1 * X'
dL/dW2 = A1 delta2'
dL/db2 = delta2
"""
    report = check(wrong, MLP)
    verdicts = [(line.line, line.verdict) for line in report.lines]
    assert verdicts == [(1, "right"), (2, "wrong"), (3, "right"), (4, "shape"), (5, "shape")]
    assert "σ′(A⁽¹⁾) where σ′(Z⁽¹⁾) is meant" in report.lines[1].mistake
    assert "2×4" in report.lines[3].message and "4×2" in report.lines[3].message
    assert "sum over the samples" in report.lines[4].mistake
    assert report.summary()["results_right"] == 2 and report.summary()["lines_right"] == 2
    assert "line 2" in str(report) and "WRONG" in str(report)


def test_a_differential_chain_with_a_skipped_step_is_right_and_the_generic_layer_is_checked_at_every_l():
    text = r"""
\begin{aligned}
\mathrm{d}L &= \operatorname{tr}\big(\delta^{(2)\top}\,\mathrm{d}Z^{(2)}\big) \\
 &= \operatorname{tr}\big(A^{(1)}\delta^{(2)\top}\,\mathrm{d}W^{(2)}\big) \\
\Rightarrow \frac{\partial L}{\partial W^{(2)}} &= \delta^{(2)} A^{(1)\top} \\
\mathrm{d}Z^{(2)} &= \mathrm{d}W^{(2)} A^{(1)} + W^{(2)} \mathrm{d}A^{(1)} \\
\mathrm{d}(W^{(2)} A^{(1)}) &= W^{(2)} \mathrm{d}A^{(1)} + \mathrm{d}W^{(2)} A^{(1)} \\
\delta^{(l)} &= (W^{(l+1)\top}\delta^{(l+1)}) \odot \sigma'(Z^{(l)})
\end{aligned}"""
    report = check(text, MLP)
    assert report.passed, str(report)
    # dZ = dW A holds with A held (only W varies): the differentials a row names are the ones that vary
    assert check(r"$$\mathrm{d}Z^{(2)} = \mathrm{d}W^{(2)} A^{(1)}$$", MLP).passed
    wrong = text.replace(r"A^{(1)} + W^{(2)} \mathrm{d}A^{(1)} \\", r"A^{(1)} - W^{(2)} \mathrm{d}A^{(1)} \\")
    report = check(wrong, MLP)
    assert first(report).line == 6 and first(report).verdict == "wrong"


def test_a_line_true_but_not_following_from_the_one_before_is_said_so():
    text = """dL/dW1 = delta1 X'
       = 2 delta1 X'
       = delta1 X'
"""
    report = check(text, MLP)
    assert [line.verdict for line in report.lines] == ["right", "wrong", "true, but does not follow"]
    assert report.lines[1].mistake == "a factor 2 too many (the ½ of ½‖·‖² cancels the 2)"
    assert report.results == [("∂L/∂W⁽¹⁾", True)]


def test_the_softmax_row_sum_term_and_a_partial_delta_are_named():
    text = """delta2 = 1/m (A2 - Y)
delta2 = 1/m (A2 .* (1 - A2)) .* (-Y ./ A2)
delta1 = W2' delta2
delta1 = W2' delta2 .* [Z1 > 0]
dL/dA1 = W2' delta2
"""
    report = check(text, SOFTMAX)
    assert [line.verdict for line in report.lines] == ["right", "wrong", "wrong", "right", "right"]
    assert "softmax's row-sum term is dropped" in report.lines[1].mistake
    assert "σ′(Z⁽¹⁾) is missing" in report.lines[2].mistake


@pytest.mark.parametrize("row, mistake", [
    ("delta2 = 0 * A2", "it is zero"),
    ("delta2 = 1/m (A2 - Y) .* sigma'(Z2) + log(A2 - 10)", ""),           # NaN everywhere: wrong, never right
    ("delta2 = 1/m (A2 - Y) .* sigma'(Z2) * 1.000001", ""),               # a relative error of 1e-6 is found
    ("delta2 = 1/m (A2 - Y) .* sigma'(Z2) + 0.00001 * A2", ""),
])
def test_a_check_can_fail_on_small_differences_zeros_and_nans(row, mistake):
    report = check(row, MLP)
    assert first(report).verdict == "wrong" and mistake in first(report).mistake


def test_expressions_by_the_differential_method():
    where = {"A": (3, 4), "X": (4, 2), "B": (2, 3)}
    text = r"""
$$\mathrm{d}f = \operatorname{tr}(A\,\mathrm{d}X\,B) = \operatorname{tr}(BA\,\mathrm{d}X)$$
$$\Rightarrow \frac{\partial f}{\partial X} = (BA)^\top = A^\top B^\top$$
"""
    assert check(text, f="tr(A*X*B)", where=where).passed
    wrong = check(text.replace(r"= A^\top B^\top", r"= B^\top A^\top"), f="tr(A*X*B)",
                                    where=where)
    assert first(wrong).verdict == "shape" and "other order" in first(wrong).mistake + first(wrong).message
    square = {"X": ("n", "n")}
    logdet = "df = tr(inv(X) dX)\n=> df/dX = inv(X)'\n"
    assert check(logdet, f="log(det(X))", where=square).passed
    report = check(logdet.replace("inv(X)'", "inv(X)"), f="log(det(X))", where=square)
    assert first(report).line == 2 and "transpose" in first(report).mistake


@pytest.mark.parametrize("text, line, column, phrase", [
    ("delta2 = (A2 - Y", 1, 17, "expected ')'"),
    ("delta2 = A2 - Q", 1, 15, "unknown symbol 'Q'"),
    ("Some prose.\n\\[ \\delta^{(2)} = \\foo{A^{(2)}} \\]", 2, 19, r"unknown LaTeX command \foo"),
    ("delta7 = A2", 1, 1, "numbered 1 … 2"),
    ("delta2 ≈ A2", 1, 8, "is not an equality"),
    ("= A2", 1, 1, "continues nothing"),
    ("$$\\frac{\\partial L}{\\partial W^{(1)}} = \\sum_j W^{(1)}$$", 1, 41, "index notation"),
])
def test_bad_input_is_an_error_naming_the_line_and_column(text, line, column, phrase):
    with pytest.raises(verify.WrittenError) as e:
        check(text, MLP)
    assert (e.value.line, e.value.column) == (line, column), str(e.value)
    assert phrase in str(e.value)


def test_markdown_prose_is_skipped_and_inline_equalities_are_checked():
    text = """# My answer

The output layer's error, over the $m$ samples: $\\delta^{(2)} = \\frac{1}{m}(A^{(2)} - Y)\\odot\\sigma'(Z^{(2)})$.

$$
\\frac{\\partial L}{\\partial b^{(2)}} = \\delta^{(2)} \\mathbf{1}_m
$$
"""
    report = check(text, MLP)
    assert [line.line for line in report.lines] == [3, 6] and report.passed


def test_names_from_a_notation_and_ngs_numbering():
    report = check("dL/dV2 = delta2 A1'", MLP, names={"V": "W"})
    assert report.passed
    with pytest.raises(verify.WrittenError, match="input_layer=1"):
        check("delta3 = A3 - Y", MLP)


def test_the_network_must_be_a_chain_of_dense_layers():
    net = derive.Network(3, [derive.LayerNorm(), derive.Dense(2, "sigmoid")])
    with pytest.raises(ValueError, match="chain of dense layers"):
        check("L = L", net)


def test_derive_check_a_file_and_grade_a_folder_into_a_csv(tmp_path, capsys):
    spec = tmp_path / "net.toml"
    spec.write_text('sizes = [3, 4, 2]\nactivation = "sigmoid"\n')
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "a.txt").write_text("delta2 = 1/m (A2 - Y) .* sigma'(Z2)\ndelta1 = (W2' delta2) .* sigma'(A1)\n")
    (answers / "b.md").write_text("$$\\delta^{(2)} = \\frac{1}{m}(A^{(2)} - Y)\\odot\\sigma'(Z^{(2)})$$\n")
    (answers / "c.tex").write_text("\\[ \\delta^{(2)} = (A^{(2)} - Y \\]\n")
    (answers / "notes.pdf").write_text("not a derivation")
    marks = tmp_path / "marks.csv"
    assert main(["check", str(answers), "--spec", str(spec), "--csv", str(marks), "--no-exact"]) == 1
    rows = list(csv.DictReader(marks.open(encoding="utf-8")))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["a.txt", "b.md", "c.tex"]
    assert rows[0]["lines_right"] == "1" and rows[0]["first_error"].startswith("line 2: σ′(A⁽¹⁾)")
    assert rows[1]["first_error"] == "" and rows[1]["results_right"] == "1"
    assert "cannot be read" in rows[2]["first_error"] and "column" in rows[2]["first_error"]
    capsys.readouterr()
    assert main(["check", str(answers / "b.md"), "--spec", str(spec), "--no-exact"]) == 0
    assert "1 of 1 lines right" in capsys.readouterr().out
    assert main(["check", str(answers / "c.tex"), "--spec", str(spec)]) == 2
    assert "line 1, column" in capsys.readouterr().err
    expr = tmp_path / "expr.txt"
    expr.write_text("df = tr(A dX B)\n=> df/dX = A' B'\n")
    assert main(["check", str(expr), "--expr", "tr(A*X*B)", "--shape", "A=2x2", "--shape", "B=2x2",
                 "--shape", "X=2x2"]) == 0
    assert main(["check", str(expr)]) == 2


def test_the_same_input_gives_the_same_report():
    text = SEEDS["seed000-andrew-ng"][1].replace("g'(z⁽³⁾)", "g'(a⁽³⁾)")
    net = EXAMPLES["seed000-andrew-ng"].build()
    one, two = (check(text, net, input_layer=1).to_json() for _ in range(2))
    assert one == two and np.isfinite(len(one))


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("level", ["scalar", "mlp", "deep", "blocks", "second"])
def test_exercises_are_deterministic_varied_and_state_the_problem_without_its_solution(tmp_path, level):
    from derive.cli.exercises import write_exercises
    one, two = tmp_path / "one", tmp_path / "two"
    write_exercises(one, level, 3, 7, pdf=False)
    write_exercises(two, level, 3, 7, pdf=False)
    assert _tree(one) == _tree(two)
    titles = [(one / f"exercise-0{k}" / "problem.tex").read_text(encoding="utf-8").split("section*{", 1)[1]
              .split("}")[0] for k in (1, 2, 3)]
    assert len(set(titles)) == 3, titles
    for k in (1, 2, 3):
        problem = (one / f"exercise-0{k}" / "problem.html").read_text(encoding="utf-8")
        solution = (one / f"exercise-0{k}" / "solution" / "derivation.html").read_text(encoding="utf-8")
        assert "What to derive" in problem and "What to derive" not in solution
        assert not any(h in problem for h in ("Derivation", "Rules used", "Summary"))
        assert any(h in solution for h in ("Derivation", "Rules used"))
    assert "exercise-03/solution/derivation.html" in (one / "README.md").read_text(encoding="utf-8")
    other = tmp_path / "other"
    write_exercises(other, level, 3, 8, pdf=False)
    assert _tree(other) != _tree(one)


@pytest.mark.parametrize("level", ["scalar", "mlp", "deep"])
def test_an_exercises_solution_checks_right_against_its_spec_and_a_mistake_does_not(tmp_path, level):
    """The spec written beside each network exercise is the network of its solution: derive's own results, written
    as LaTeX rows, check right with `derive check --spec network.toml`, and a zeroed δ does not."""
    from derive.cli.exercises import exercise
    from derive.cli.spec import _network_of, _read_spec
    import random
    rng = random.Random(3)
    for k in range(3):
        _, result, _, spec = exercise(level, rng)
        (tmp_path / "network.toml").write_text(spec, encoding="utf-8")
        net = _network_of(_read_spec(tmp_path / "network.toml"))
        assert repr(net) == repr(result.network)
        answer = tmp_path / f"answer{k}.tex"
        answer.write_text(_results_in_latex(result.network), encoding="utf-8")
        assert main(["check", str(answer), "--spec", str(tmp_path / "network.toml"), "--no-exact"]) == 0
        first_delta = next(iter(result.deltas))
        wrong = _results_in_latex(result.network).replace(f"{latex(first_delta)} &= ", f"{latex(first_delta)} &= 0 ", 1)
        answer.write_text(wrong, encoding="utf-8")
        assert main(["check", str(answer), "--spec", str(tmp_path / "network.toml"), "--no-exact"]) == 1


def test_derive_exercises_writes_pdf_and_html_into_the_folder_asked_for(tmp_path, capsys):
    out = tmp_path / "sheets"
    assert main(["exercises", "--count", "2", "--seed", "1", "--level", "mlp", "--out", str(out)]) == 0
    files = {p.name for p in (out / "exercise-01").iterdir()}
    assert {"problem.tex", "problem.html", "network.toml", "solution"} <= files
    if "problem.pdf" in files:   # TeX installed
        assert (out / "exercise-01" / "solution" / "derivation.pdf").exists()
    assert main(["exercises", "--count", "0", "--out", str(out)]) == 2
    assert main(["exercises", "--level", "hard", "--out", str(out)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheets"]


@pytest.fixture
def patient(monkeypatch):
    """Time enough for every proof on a loaded machine: these tests ask what SymPy shows, not how fast."""
    import verify.handwritten.check as checking
    monkeypatch.setattr(checking, "SECONDS", 60.0)
    monkeypatch.setattr(checking, "BUDGET", 300.0)


@pytest.mark.slow
def test_right_lines_are_proved_exactly_where_sympy_decides_and_a_wrong_equality_never_is(patient):
    from verify.handwritten.algebra import Typer
    from verify.handwritten.meaning import NetworkMeaning
    from verify.handwritten.proof import prove
    from verify.handwritten.syntax import read, rows
    from verify.report import _within
    text = """delta2 = 1/m (A2 - Y) .* sigma'(Z2)
dL/dW2 = delta2 A1'
dL = tr(delta2' dZ2) = tr(delta2' dW2 A1) = tr(A1 delta2' dW2)
dZ2 = dW2 A1 + W2 dA1
"""
    report = verify.check_derivation(text, MLP)
    assert [line.proved for line in report.lines] == [True, True, True, True], str(report)
    assert "ok, proved" in str(report) and report.summary()["lines_proved"] == 4
    assert not any(line.proved for line in check(text, MLP).lines)
    meaning = NetworkMeaning(MLP)
    for wrong in ("delta2 = 1/m (A2 - Y) .* sigma'(A2)", "dL/dW2 = delta2 A1' + 0.000001 * W2",
                  "dZ2 = dW2 A1", "tr(delta2' dW2 A1) = 2 tr(A1 delta2' dW2)"):
        row = rows(wrong)[0]
        typer = Typer(meaning, row)
        a, b = (typer.finish(typer.type(tree)) for _, tree in read(row, meaning.names))
        sources = ["W2", "A1"] if "dA1" in wrong or wrong.startswith("dZ2") else ["W2"]
        assert _within(5, prove, a, b, meaning, sources) is not True, wrong


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed000-andrew-ng", "seed003-1-1-1", "seed004-two-layer"])
def test_the_seeds_results_are_proved_exactly(name, patient):
    options, text, _ = SEEDS[name]
    report = verify.check_derivation(text, EXAMPLES[name].build(), **options)
    assert report.passed and report.summary()["lines_proved"] >= 2, str(report)
