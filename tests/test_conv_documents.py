"""Documents of convolution and recurrent layers: one generic tap j and one generic step t, the convolution's gradients
equal to the correlation and the transposed convolution computed by hand in NumPy, and the sections a user switches."""
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.examples import EXAMPLES
from derive.codegen.program import lambdify
from derive.documents.blocks import Definitions, Symbols, backprop_blocks
from derive.errors import InvalidArgument
from derive.networks.textbook import textbook


def convolutions(layout, stride, padding):
    """A convolution without activation (its output's δ is the transposed convolution itself) before one with
    `stride` and `padding`."""
    return derive.Network(2, [derive.Conv1D(3, 2, padding=1), derive.Conv1D(2, 3, stride=stride, padding=padding)],
                          layout=layout, samples=9)


def evaluate(E, rng):
    """E at random values of the matrices it reads: (value, {name: array})."""
    matrices = sorted(E.atoms(sp.MatrixSymbol), key=str)
    values = {M.name: rng.normal(size=tuple(int(k) for k in M.shape)) for M in matrices}
    return lambdify(matrices, E)(*[values[M.name] for M in matrices]), values


def correlation(A, delta, j, s, p):
    """Tap j's kernel gradient by hand: Σ_t A[t·s + j − p, c] δ[t, o] (steps as rows; a step outside A is zero)."""
    out = np.zeros((A.shape[1], delta.shape[1]))
    for t in range(delta.shape[0]):
        u = t * s + j - p
        if 0 <= u < A.shape[0]:
            out += np.outer(A[u], delta[t])
    return out


def transposed_convolution(delta, taps, s, p, T):
    """The input's gradient by hand, as the full correlation of δ (s − 1 zero steps between its steps, w − 1 at either
    end) with the kernel flipped in time (taps[w − 1 − i] at offset i), steps p … p + T − 1 of it."""
    w = len(taps)
    dilated = np.zeros((s * (delta.shape[0] - 1) + 1, delta.shape[1]))
    dilated[::s] = delta
    padded = np.pad(dilated, ((w - 1, w - 1), (0, 0)))
    full = np.array([sum(padded[v + i] @ taps[w - 1 - i].T for i in range(w)) for v in range(len(padded) - w + 1)])
    full = np.pad(full, ((0, max(0, p + T - len(full))), (0, 0)))
    return full[p:p + T]


@pytest.mark.parametrize("layout", ["AW", "WA", "WtA"])
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2)])
def test_the_kernel_gradient_is_the_correlation_and_the_input_gradient_the_transposed_convolution(layout, stride,
                                                                                                 padding):
    net = convolutions(layout, stride, padding)
    result = derive.backprop(net)
    block = net.blocks[1]
    rows = layout == "AW"   # steps as rows; otherwise as columns: transpose to compare
    steps = (lambda M: M) if rows else (lambda M: M.T)
    rng = np.random.default_rng(stride * 10 + padding)
    for j, (Kj, dKj) in enumerate(block.deltas[:-1]):
        got, values = evaluate(result.deltas[dKj], rng)
        want = correlation(steps(values["A1"]), steps(values[block.deltas[-1][1].name]), j, stride, padding)
        assert np.allclose(got, want.T if layout == "WA" else want)
    (A, dA), = [(Z, d) for Z, d in net.blocks[0].deltas if Z == net.blocks[0].output]
    got, values = evaluate(result.deltas[dA], rng)
    taps = [values[Kj.name].T if layout == "WA" else values[Kj.name] for Kj, _ in block.deltas[:-1]]
    T = int(block.input.shape[0 if rows else 1])   # the steps of layer 2's input: 10
    want = transposed_convolution(steps(values[block.deltas[-1][1].name]), taps, stride, padding, T)
    assert np.allclose(steps(got), want)


def test_the_document_names_the_correlation_and_the_transposed_convolution():
    chains = textbook(EXAMPLES["block-conv1d"].derive())[1]
    remarks = ["".join(p for p in c.remark if isinstance(p, str)) for c in chains if not isinstance(c.remark, str)]
    assert sum("the correlation of the input" in r for r in remarks) == 2
    assert sum("transposed convolution" in r and "flipped in time" in r for r in remarks) == 1


def test_a_convolution_is_derived_once_for_a_generic_tap():
    result = EXAMPLES["block-conv1d"].derive()
    chains = textbook(result)[1]
    for block in result.network.blocks[:2]:
        mine = [c for c in chains if c.title[0].startswith(block.title)]
        taps = len(block.deltas) - 1
        assert len(mine) == 2   # from δ back (Σ_j over the taps), and one for a generic tap j
        main, tap = mine
        assert [str(s) for s, *_ in main.results if str(s).startswith("delta_K")] == [f"delta_K{block.index}_j"]
        assert len(tap.instances) == taps and tap.where == f"for j = {', '.join(map(str, range(taps)))}"
        assert [(str(s), index, first, last) for s, _, index, first, last in tap.sums] == [
            (f"K{block.index}", "j", 0, taps - 1)]


def test_symbols_and_forward_pass_are_written_once_for_a_tap_and_a_step():
    n = derive.Notation()
    conv = backprop_blocks(EXAMPLES["block-conv1d"].derive(), n)
    # what the forward pass defines is in its table, with its meaning; the rest in the symbols'
    symbols = next(b for b in conv if isinstance(b, Symbols)).rows
    defined = next(b for b in conv if isinstance(b, Definitions)).rows
    names = [tex for tex, _, _ in symbols] + [lhs for lhs, *_ in defined]
    assert not {tex for tex, _, _ in symbols} & {lhs for lhs, *_ in defined}
    for letter in "SEK":
        assert sum(t.startswith(f"{letter}_{{j}}") for t in names) == 2   # one per layer
        assert not any(t.startswith(f"{letter}_{{0}}") for t in names)
    meaning = next(m for t, _, m in symbols if t == "S_{j}^{(1)}")
    assert "2t + j − 1" in meaning and "t = 0, …, 3" in meaning and "padding" in meaning
    rec = derive.latex_document(EXAMPLES["block-recurrent"].derive())
    assert "X_{1}" not in rec.split(r"\subsection*{Derivation")[0]   # inputs once, for a generic step
    assert r"Z_{t}^{(1)}$} & \padded{\fitmath{W_{h}^{(1)} H_{t-1}^{(1)}" in rec and "H₀ = 0".replace("₀", "$_{0}$") in rec
    assert "is the number of input features" in rec and "the width of the hidden state of layer 1" in rec


def test_no_spec_text_in_block_documents():
    for name in ("block-conv1d", "block-recurrent", "block-transformer"):
        tex = derive.latex_document(EXAMPLES[name].derive(), title=EXAMPLES[name].title)
        for spec in ("layout", "softmax\\_ce", "half\\_sse", "bce", "t·", "+ -"):
            assert spec not in tex, (name, spec)


def test_sections_switch_the_index_form_and_the_algorithm():
    block = EXAMPLES["block-conv1d"].derive()
    mlp = EXAMPLES["seed000-4-layer-sigmoid"].derive()
    assert "algorithmic" not in derive.latex_document(block)
    assert "algorithmic" in derive.latex_document(block, sections=("algorithm",))
    default = derive.latex_document(mlp)
    assert "Index form" in default and "algorithmic" in default
    assert derive.latex_document(mlp, sections=("index", "algorithm")) == default
    bare = derive.latex_document(mlp, sections=())
    assert "Index form" not in bare and "algorithmic" not in bare
    only = derive.html_document(mlp, sections=("index",))
    assert "Index form" in only and "The algorithm" not in only
    with pytest.raises(InvalidArgument, match="unknown section 'code'"):
        derive.latex_document(mlp, sections=("code",))
    with pytest.raises(InvalidArgument, match="dense layers only"):
        derive.latex_document(block, sections=("index",))
    with pytest.raises(InvalidArgument, match="not a network"):
        A, X = sp.MatrixSymbol("A", 2, 2), sp.MatrixSymbol("X", 2, 2)
        derive.latex_document(derive.derivation(sp.Trace(A * X), X), sections=())


def pages(result, tmp_path, title):
    derive.write(result, tmp_path, title=title)
    info = subprocess.run(["pdfinfo", str(tmp_path / "derivation.pdf")], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdfinfo") is None, reason="needs TeX")
@pytest.mark.parametrize("name", ["block-conv1d", "block-recurrent"])
def test_convolution_and_recurrent_documents_fit_three_pages(name, tmp_path):
    assert pages(EXAMPLES[name].derive(), tmp_path, EXAMPLES[name].title) <= 3
