"""The second-order and expression documents: the gradient's chain before the Hessian, convexity stated, one R line
in full, the Gauss–Newton pass's own symbol, `derive expr` titled and shaped, and `derive expr --hessian`."""
import re
import runpy

import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.examples import EXAMPLES
from derive.cli.main import main
from derive.documents import latex_document
from derive.documents.blocks import ChainBlock, Equations, Heading, Text
from derive.documents.second import expression_chain, r_blocks, second_blocks
from derive.networks.backprop import backprop
from verify import relative_error

from .cookbook import CASES, symbols, values


def _words(block):
    return "".join(s for _, s in block.parts)


def test_logistic_hessian_derives_the_gradient_first_and_states_convexity():
    d = EXAMPLES["second-logistic-hessian"].derive()
    blocks = second_blocks(d)
    chain = next(k for k, b in enumerate(blocks) if isinstance(b, ChainBlock))
    hessian = next(k for k, b in enumerate(blocks) if isinstance(b, Heading) and "differential of the gradient" in b.text)
    assert chain < hessian
    lines = [line for tex, _ in blocks[chain].rows for line in tex]
    # the lesson: the loss's adjoint of a has a ⊙ (1 − a) below, σ′ = a ⊙ (1 − a) cancels it, the error a − y is left
    assert any(r"\oslash" in line and r"\mathrm{d}a" in line for line in lines)
    assert r"\oslash" not in lines[-1] and "(a - y)" in blocks[chain].results[0][1]
    convexity = [_words(b) for b in blocks if isinstance(b, Text) and "Convexity" in _words(b)]
    assert convexity and r"H \succeq \lambda I" in convexity[0] and "convex" in convexity[0]
    assert r"\succeq 0" in convexity[0] and r"\operatorname{diag}" in convexity[0]


def test_the_stated_bound_holds_numerically():
    """H − λI is positive semidefinite at a random point (the statement the document makes)."""
    d = EXAMPLES["second-logistic-hessian"].derive()
    rng = np.random.default_rng(1)
    m, n, lam = 7, 4, 0.3
    X, w, y = rng.normal(size=(m, n)), rng.normal(size=(n, 1)), rng.integers(0, 2, size=(m, 1)).astype(float)
    H = d.numpy()(X=X, w=w, y=y, **{"lambda": lam})
    a = 1 / (1 + np.exp(-X @ w))
    assert relative_error(H, X.T @ np.diag((a * (1 - a)).ravel()) @ X / m + lam * np.eye(n)) < 1e-12
    assert np.linalg.eigvalsh(H - lam * np.eye(n)).min() > -1e-12


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_chain_reads_off_the_books_gradient(case):
    S = symbols(3)
    f, X = case.f(S), S[case.wrt]
    G = expression_chain(f, X).results[0][1]
    names = [k for k in S if isinstance(S[k], sp.MatrixSymbol)]
    v = values(3, symmetric=case.symmetric)
    got = np.asarray(derive.lambdify([S[k] for k in names], G)(*[v[k] for k in names]), dtype=float)
    assert relative_error(got, case.book(v)) < 1e-8


def test_r_recursion_derives_one_line_of_each_pass_in_full_and_names_the_gauss_newton_delta():
    bp = backprop(EXAMPLES["second-mlp-r-recursion"].build())
    blocks = r_blocks(bp)
    chains = [b for b in blocks if isinstance(b, ChainBlock)]
    assert [c.lhs for c in chains] == [r"\mathcal{R}\{Z^{(2)}\}", r"\mathcal{R}\{\delta^{(1)}\}"]
    tables = [b for b in blocks if isinstance(b, Equations) and b.numbered]
    hvp = {lhs: rhs for t in tables[:2] for lhs, rhs, _ in t.rows}
    for c in chains:   # each starts at R{definition}, applies rules step by step, ends at the line of the R pass
        assert len(c.rows) >= 4 and c.rows[0][1] == "definition"
        assert c.rows[-1][0][0] == hvp[c.lhs]
    gauss_newton = [lhs for lhs, _, _ in tables[2].rows]
    assert r"\mathcal{R}\{\delta^{(1)}\}" not in gauss_newton and r"\hat{\delta}^{(1)}" in gauss_newton
    assert all(r"\mathcal{R}\{\delta^{(1)}\}" not in rhs for _, rhs, _ in tables[2].rows)
    assert next(rhs for lhs, rhs, _ in tables[2].rows if lhs == r"(G v)_{W^{(1)}}") == r"\hat{\delta}^{(1)} X^{\top}"


def test_expr_document_titles_the_function_gives_every_shape_and_reads_as_one_chain(tmp_path):
    assert main(["expr", "tr(A*X*B)", "--wrt", "X", "--shape", "A=3x3", "--shape", "B=2x3", "--shape", "X=3x2",
                 "--out", str(tmp_path), "--no-pdf"]) == 0
    tex = (tmp_path / "derivation.tex").read_text()
    title = re.search(r"\\section\*\{(.*)\}", tex).group(1)
    assert "*" not in title and "tr(A X B)" in title
    for shape in (r"A \in \mathbb{R}^{3 \times 3}", r"B \in \mathbb{R}^{2 \times 3}", r"X \in \mathbb{R}^{3 \times 2}"):
        assert shape in tex
    chain = tex[tex.index(r"\mathrm{d}f &="):]
    assert (r"\Rightarrow\ \frac{\partial f}{\partial X} = \fitafter{\Rightarrow\ \frac{\partial f}{\partial X} = {}}"
            r"{A^{\top} B^{\top}}") in chain[:chain.index(r"\end{align*}")]
    assert r"\rulename{product rule}:" not in tex   # the step log is the full view, not the textbook one


def test_cli_hessian_writes_the_hessian_document(tmp_path):
    assert main(["expr", "tr(X'*A*X)", "--wrt", "X", "--shape", "A=3x3", "--shape", "X=3x2", "--hessian",
                 "--out", str(tmp_path), "--no-pdf"]) == 0
    tex = (tmp_path / "derivation.tex").read_text()
    stated = re.search(r"\\boxed\{H = (.*)\}", tex).group(1).removeprefix(r"\fitmath{").removesuffix("}")
    A, X = sp.MatrixSymbol("A", 3, 3), sp.MatrixSymbol("X", 3, 2)
    H = derive.hessian(sp.Trace(X.T * A * X), X)
    assert stated == derive.latex(H)
    rng = np.random.default_rng(0)
    A_, X_ = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    written = runpy.run_path(str(tmp_path / "gradients.py"))["hessian"](A=A_, X=X_)
    # the Hessian of tr(XᵀAX) in column-major vec is I₂ ⊗ (A + Aᵀ)
    assert relative_error(written, np.kron(np.eye(2), A_ + A_.T)) < 1e-12
    assert relative_error(written, derive.lambdify([A, X], H)(A_, X_)) < 1e-12
    assert "The gradient" in tex and r"\mathrm{d}f &=" in tex
