"""LaTeX and HTML documents: golden LaTeX, notation options, HTML with MathML only, determinism,
the committed output/ up to date, and (with TeX installed) every document compiles."""
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive.cli import demo
from derive.documents import write
from derive.documents.blocks import Equations, backprop_blocks
from derive.documents.html import _math, to_html
from derive.documents.tex import pdflatex
from derive.cli.examples import EXAMPLES
from derive.printing.latex import Notation, latex
from derive.printing.text import text

from .pages import orphaned_headings

ROOT = Path(__file__).resolve().parent.parent
n = sp.Symbol("n", integer=True, positive=True)
X, A, B = (sp.MatrixSymbol(k, n, n) for k in "XAB")


@pytest.mark.parametrize("expr, expected", [
    (sp.Trace(A * X * B), r"\mathrm{tr}(A X B)"),
    (sp.HadamardProduct(A, X.T), r"A \odot X^{\top}"),
    (sp.MatAdd(A, sp.MatMul(-1, B)), r"A - B"),
    (sp.HadamardPower(A, 2), r"A^{\circ 2}"),
    (sp.Inverse(X), r"X^{-1}"),
])
def test_golden_expressions(expr, expected):
    assert latex(expr) == expected


def test_golden_seed004_recursion():
    result = EXAMPLES["seed004-two-layer"].derive()
    rows = {latex(k): latex(v) for k, v in result.deltas.items()}
    assert rows == {r"\delta^{(2)}": r"A^{(2)} - Y",
                    r"\delta^{(1)}": r"(W^{(2)} \delta^{(2)}) \odot (\mathbf{1} - A^{(1)}) \odot A^{(1)}"}
    assert latex(result.gradients["W1"]) == r"X {\delta^{(1)}}^{\top}"


def test_notation_options():
    result = EXAMPLES["seed000-andrew-ng"].derive()
    G = result.gradients["W2"]
    assert latex(G, Notation(names={"W": r"\Theta"})) == r"\delta^{(2)} {A^{(1)}}^{\top}"
    delta1 = result.deltas[result.network.layers[0].delta]
    assert latex(delta1, Notation(names={"W": r"\Theta"}, transpose="T", layer="subscript", hadamard=r"\circ")) == (
        r"(\Theta_{2}^{T} \delta_{2}) \circ (\mathbf{1} - A_{1}) \circ A_{1}")
    assert latex(G, Notation(bold=True)) == r"\delta^{(2)} {\mathbf{A}^{(1)}}^{\top}"


def test_golden_algorithm_in_the_documents_notation():
    """The generated program typeset from its statements: the derivation's symbols and notation, x = P; x *= R as
    one statement, no bookkeeping (namespace, sizes, del)."""
    from derive.documents.blocks import algorithm
    result = EXAMPLES["seed004-two-layer"].derive()
    block = algorithm(result.program())
    rows = dict(block.rows)
    assert rows["Z^{(1)}"] == r"{W^{(1)}}^{\top} X + b^{(1)} \mathbf{1}_{m}^{\top}"
    assert rows[r"\delta^{(1)}"] == r"(W^{(2)} \delta^{(2)}) \odot (\mathbf{1} - A^{(1)}) \odot A^{(1)}"
    assert rows[r"\partial L / \partial W^{(1)}"] == r"X {\delta^{(1)}}^{\top}"
    assert rows[r"\partial L / \partial b^{(1)}"] == r"\delta^{(1)} \mathbf{1}_{m}"
    assert rows["A^{(1)}"] == r"\sigma(Z^{(1)})"
    assert block.returns == (r"\partial L / \partial W^{(1)}", r"\partial L / \partial b^{(1)}", r"\partial L / \partial W^{(2)}", r"\partial L / \partial b^{(2)}")
    text = " ".join(map(" ".join, block.rows))
    assert not any(word in text for word in (".T", "xp", "delta1", "delta2", "del ", "shape", "_dtype"))
    theta = algorithm(result.program(), notation=Notation(names={"W": r"\Theta"}, transpose="T"))
    assert r"{\Theta^{(1)}}^{T}" in " ".join(map(" ".join, theta.rows))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.depth = [], 0

    def handle_starttag(self, tag, attrs):
        self.depth += tag == "math"

    def handle_endtag(self, tag):
        self.depth -= tag == "math"

    def handle_data(self, data):
        if self.depth == 0:
            self.text.append(data)


@pytest.mark.parametrize("name", ["seed004-two-layer", "seed000-andrew-ng"])
def test_html_is_mathml_only_and_holds_every_equation(name):
    result = EXAMPLES[name].derive()
    blocks = backprop_blocks(result)
    page = to_html(name, blocks)
    parser = _Collector()
    parser.feed(page)
    outside = "".join(parser.text)
    assert "$" not in outside and "\\frac" not in outside and "\\mathrm" not in outside
    for block in blocks:
        if isinstance(block, Equations):
            for lhs, rhs, *_ in block.rows:   # as latex2mathml writes them, in display style with bold 𝟏
                assert _math(lhs, displaystyle=True) in page and (not rhs or _math(rhs, displaystyle=True) in page)


def test_writing_twice_gives_identical_bytes(tmp_path):
    result = EXAMPLES["seed004-two-layer"].derive()
    first = [p.read_bytes() for p in write(result, tmp_path / "a", pdf=False)]
    second = [p.read_bytes() for p in write(EXAMPLES["seed004-two-layer"].derive(), tmp_path / "b", pdf=False)]
    assert first == second


def test_without_tex_no_pdf_and_no_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _: None)
    written = write(derive.derivation(sp.Trace(A * X * B), X), tmp_path)
    assert [p.name for p in written] == ["derivation.tex", "derivation.html", "derivation.txt", "gradients.py"]


def test_committed_output_is_up_to_date(tmp_path):
    demo.main(tmp_path, pdf=False)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "output") for p in (ROOT / "output").rglob("*")
                       if p.is_file() and p.suffix not in (".pdf", ".png")   # the README's page image is made by hand
                       and p.parts[len(ROOT.parts) + 1] != "training")   # make training's (tests/test_training.py)
    assert fresh == committed, "output/ is stale: run `make demo` and commit output/"
    for rel in fresh:
        assert (tmp_path / rel).read_bytes() == (ROOT / "output" / rel).read_bytes(), f"output/{rel} is stale"


def test_an_orphaned_heading_is_caught(tmp_path):
    if not (shutil.which("pdflatex") and shutil.which("pdftotext")):
        pytest.skip("no TeX or poppler")
    tex = tmp_path / "orphan.tex"
    tex.write_text("\\documentclass{article}\\usepackage[a4paper]{geometry}\\begin{document}\\vspace*{20.5cm}\n"
                   "\\subsection*{Lonely heading}\n\\newpage Text.\n\\end{document}\n", encoding="utf-8")
    assert [line for _, line in orphaned_headings(pdflatex(tex), tex.read_text(encoding="utf-8"))] == ["Lonely heading"]


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdfinfo") is None, reason="no TeX or poppler")
def test_seed004_fits_four_portrait_pages(tmp_path):
    import subprocess
    copy = tmp_path / "derivation.tex"
    copy.write_bytes((ROOT / "output" / "seed004-two-layer" / "derivation.tex").read_bytes())
    info = subprocess.run(["pdfinfo", str(pdflatex(copy))], capture_output=True, text=True).stdout
    pages, size = re.search(r"Pages:\s+(\d+)", info).group(1), re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info)
    assert int(pages) <= 4
    assert float(size.group(1)) < float(size.group(2))   # portrait


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed (CI installs one)")
@pytest.mark.parametrize("argv", [["784", "128", "10", "--activation", "relu", "--output", "softmax", "--loss",
                                   "softmax_ce", "--layout", "AW"],
                                  ["n0", "n1", "n2", "n3", "n4", "n5", "--activation", "tanh", "--output", "sigmoid",
                                   "--loss", "bce"]])
def test_the_issues_cli_networks_fit_the_page(argv, tmp_path):
    from derive.cli.main import main
    from derive.documents.tex import pdflatex as compile_
    assert main(["mlp", *argv, "--name", "net", "--out", str(tmp_path), "--no-pdf", "--trials", "1"]) == 0
    warnings = []
    compile_(tmp_path / "net" / "derivation.tex", warnings)
    assert warnings == [], warnings
    text = (tmp_path / "net" / "derivation.txt").read_text(encoding="utf-8")
    assert max(map(len, text.splitlines())) <= 100


def test_latex_documents_are_standalone():
    d = derive.derivation(sp.Trace(A * X * B), X)
    tex = derive.latex_document(d)
    assert tex.startswith(r"\documentclass") and r"\boxed{\frac{\partial f}{\partial X} = A^{\top} B^{\top}}" in tex
    assert r"\mathrm{tr}(A X B)" in tex and r"\rulename{cyclic trace}" in tex
    doc = derive.latex_document(EXAMPLES["seed004-two-layer"].derive())
    # the summary box
    assert (r"\padded{$\displaystyle \frac{\partial L}{\partial W^{(1)}}$} & "
            r"\padded{\fitmath{X {\delta^{(1)}}^{\top}}}") in doc


def test_stable_forms_are_typeset_by_latexify_from_the_helpers_code():
    """σ and softmax as the code computes them: the formulas come from the helper functions' own source."""
    from derive.documents.blocks import stable_forms
    result = derive.backprop(derive.mlp([2, 3, 2], activation="sigmoid", output="softmax", loss="softmax_ce"))
    rows = {lhs: (rhs, note) for lhs, rhs, note in stable_forms(result.program()).rows}
    assert set(rows) == {r"\sigma(x)", r"\operatorname{softmax}(z)"}
    sigma, _ = rows[r"\sigma(x)"]
    assert sigma.startswith(r"\begin{cases}") and r"\text{if } x \ge 0" in sigma and r"\exp" in sigma
    softmax, note = rows[r"\operatorname{softmax}(z)"]
    assert r"z - \mathrm{max}" in softmax and r"\sum" in softmax and "each sample" in note
    assert not stable_forms(derive.backprop(derive.mlp([2, 2], activation="tanh")).program()).rows


def test_html_math_keeps_bold_one_colon_equals_and_full_size_fractions(tmp_path):
    """Chromium draws mathvariant="bold" only on <mi>: b⁽¹⁾1ᵀ read as "times one"; := came out as ': ='; fractions in
    the equation tables were script size."""
    page = (ROOT / "output" / "seed004-two-layer" / "derivation.html").read_text(encoding="utf-8")
    assert 'mathvariant="bold"' not in page and "<mn>\U0001D7CF</mn>" in page
    assert "<mi>:</mi>" not in page and "&#x02254;" in page
    assert 'displaystyle="true"' in page


def test_golden_symbol_table_gives_every_symbol_its_shape():
    """Z, A, δ and 1 were never given shapes (issue 14): the document now opens with every symbol and its shape."""
    from derive.documents.blocks import symbols
    net = EXAMPLES["seed004-two-layer"].build()
    rows = {tex: (shape, meaning) for tex, shape, meaning in symbols(net, Notation()).rows}
    assert rows["Z^{(1)}"][0] == r"\mathbb{R}^{n_{1} \times m}" and rows["W^{(1)}"][0] == r"\mathbb{R}^{n_{0} \times n_{1}}"
    assert rows[r"\delta^{(2)}"] == (r"\mathbb{R}^{n_{2} \times m}",
                                     "the error of layer 2: the gradient of L with respect to its pre-activations")
    assert rows[r"\mathbf{1}_{m}"][0] == r"\mathbb{R}^{m \times 1}"
    assert len(rows) == 2 + 5 * 2 + 1


def test_titles_describe_the_network_in_words_not_a_python_repr():
    net = derive.mlp([784, 128, 10], activation="relu", output="softmax", loss="softmax_ce", layout="AW")
    assert net.describe() == "784 → 128 → 10 network: relu hidden, softmax output, loss softmax_ce (mean over m samples)"
    assert "Network(" not in derive.backprop(derive.mlp([2, 2])).module().split('"""')[1]


def assert_documents_hold_every_gradient(result):
    """The text, LaTeX and HTML documents of a Backprop build, and each holds ∂L/∂P for every parameter P and every
    δ the backprop names; the derivation reaches every dP that L depends on (a chain brings each parameter's term to
    tr(Gᵀ dP); W_h of a recurrent layer of one step is read by nothing)."""
    from derive.documents import html_document, latex_document
    from derive.networks.textbook import textbook
    plain, tex, page = result.text(), latex_document(result), html_document(result)
    # a block derived as another alike one was ("as in layer k") reads its results off without the steps again
    alike = {s for c in textbook(result)[1] if not c.lines for s, _, _ in c.results}
    for P in result.network.parameters:
        read = any(P in E.atoms(sp.MatrixSymbol) for E in result.forward.values()) and P not in alike
        assert f"∂L/∂{P.name} = " in plain and (not read or re.search(rf"\bd{P.name}\b", plain)), P.name
        # derived in the body: ⇒ ∂L/∂P = … (in HTML the fraction's MathML followed by =, inside a result's formula)
        fraction = r"\frac{\partial L}{\partial %s}" % latex(P)
        mfrac = re.search(r"<mfrac>.*</mfrac>", _math(fraction, displaystyle=True)).group()
        derived = P not in alike
        assert (rf"\Rightarrow\ {fraction} = " if derived else fraction) in tex, P.name
        assert mfrac + ("<mo>&#x0003D;</mo>" if derived else "") in page, P.name
    # a δ of a step t, a tap j or a head h is stated once for the generic one its chain stands for
    generic = {M for c in textbook(result)[1] for instance in c.instances for M in instance.values()}
    for delta in result.deltas:
        assert delta in generic or f"{text(delta)} = " in plain and latex(delta) in tex, delta.name


# a network ending in each kind of block (with and without an activation where it takes one)
ENDINGS = {
    "dense": lambda: derive.Network(3, [derive.Conv1D(2, 2), derive.Dense(2, "tanh")], samples=4),
    "convolution, identity": lambda: derive.Network(3, [derive.Dense(3, "tanh"), derive.Conv1D(2, 2)], samples=4),
    "convolution, tanh": lambda: derive.Network(3, [derive.Conv1D(2, 2, activation="tanh")], samples=4),
    "recurrent": lambda: derive.Network(3, [derive.Recurrent(2, 2)], samples=2),
    "convolution, sigmoid, bce": lambda: derive.Network(3, [derive.Conv1D(2, 2, activation="sigmoid")], loss="bce",
                                                        samples=4, layout="AW"),
    "recurrent, softplus, softmax_ce": lambda: derive.Network(3, [derive.Recurrent(2, 2, "softplus")],
                                                              loss="softmax_ce", samples=2, layout="WtA"),
    "residual": lambda: derive.Network(3, [derive.Residual([derive.Dense(3, "tanh")])], samples=2),
    "layer norm": lambda: derive.Network(3, [derive.Dense(3, "tanh"), derive.LayerNorm()], samples=2),
    "self-attention": lambda: derive.Network(3, [derive.SelfAttention(2, heads=2)], layout="AW", samples=3),
}


@pytest.mark.parametrize("name", ENDINGS)
def test_documents_of_a_network_ending_in_each_block_hold_every_gradient(name):
    assert_documents_hold_every_gradient(derive.backprop(ENDINGS[name]()))


def test_a_network_without_weights_has_no_decay_chain():
    """Layer norms only, λ = 1/4: (λ/2) Σ ‖W‖² has no W to sum (the document crashed on an empty sum; found by the
    fuzzer)."""
    net = derive.Network(3, [derive.LayerNorm(), derive.LayerNorm()], layout="AW", samples=3, weight_decay=0.25)
    assert_documents_hold_every_gradient(derive.backprop(net))


def test_text_symbols_are_set_as_mathematics():
    # pdflatex's text fonts print × as Ö: every symbol of the documents' words goes through math mode
    from derive.documents.tex import _tex_text
    assert _tex_text("4 × 4 · 2 ≤ 8 ≥ 1 − 1") == r"4 $\times$ 4 $\cdot$ 2 $\le$ 8 $\ge$ 1 $-$ 1"
