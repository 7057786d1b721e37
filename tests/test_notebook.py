"""The example notebooks: committed with their outputs, which a fresh run reproduces; the displays are the documents'
HTML and change nothing outside themselves in a notebook (nbconvert's JupyterLab page in headless Chromium: sibling
markdown cells keep their width and margins, chains stay left-aligned, rows unstriped)."""
import html
import importlib.util
import json
import re
import shutil
import subprocess
from copy import deepcopy
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
DISPLAYS = [p for p in NOTEBOOKS if p.stem != "training"]   # the training notebook shows figures, no derive display
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _execute():
    spec = importlib.util.spec_from_file_location("execute", EXAMPLES / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.executed


# a check's error at rounding level (max_abs=1.4e-16, 2.81e-10 in a table) differs in its last bits from one
# machine's BLAS to another's: compared as what it is, an error below the tolerance
ROUNDING = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?e-(?:0?[5-9]|[1-9]\d)\b|(?<![\w.])0\.0+e\+00\b|(?<=max_abs=)0\.0\b"
                      r"|(?<=max_rel=)0\.0\b")


def _rounding(text):
    return ROUNDING.sub("≈0", text) if isinstance(text, str) else [ROUNDING.sub("≈0", t) for t in text]


def outputs(nb):
    """[(cell id, [(output type, {mime: text} or stream text)])] of the code cells, errors at rounding level as ≈0."""
    def seen(out):
        if out["output_type"] == "stream":
            return ("stream", _rounding(out["text"]))
        if out["output_type"] == "error":
            return ("error", out["ename"], out["evalue"])
        # a figure's pixels depend on the plotting library's version: an image is compared by its presence
        return (out["output_type"], {k: "<image>" if k.startswith("image/") else _rounding(v)
                                      for k, v in out["data"].items()})
    return [(cell["id"], [seen(o) for o in cell["outputs"]]) for cell in nb.cells if cell.cell_type == "code"]


def test_there_are_the_three_example_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"seed004-two-layer", "block-network", "hessian"}


@pytest.mark.slow   # a kernel per notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_what_a_fresh_run_gives(path):
    committed = nbformat.read(path, as_version=4)
    shown = outputs(committed)
    assert all(outs for _, outs in shown), f"{path.name}: a code cell without outputs (run `make notebooks`)"
    assert not [o for _, outs in shown for o in outs if o[0] == "error"], f"{path.name}: an error is committed"
    assert outputs(_execute()(path)) == shown, f"{path.name}: outputs differ from a fresh run (run `make notebooks`)"


def test_the_seed_notebook_shows_the_network_the_derivation_and_the_report():
    nb = nbformat.read(EXAMPLES / "seed004-two-layer.ipynb", as_version=4)
    network, derivation, report = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
                                   for out in cell["outputs"] if "text/html" in out.get("data", {})]
    # a network as a sentence and its tables, not a heading
    assert network.startswith("<div class=derive>") and "<h1" not in network and "<p>A <math" in network
    assert "pre-activations" in network
    assert "The output layer" in derivation and "<math" in derivation and "Summary" in derivation
    assert "PASSED" in report


def test_reprs_are_the_documents_html_scoped_to_their_own_div():
    import derive
    import verify
    result = derive.backprop(derive.mlp([2, 2, 1], loss="bce", samples=2))
    shown = result._repr_html_()
    assert shown.startswith("<div class=derive>") and "<h1" not in shown
    style = re.search(r"<style>(.*?)</style>", shown).group(1)
    selectors = [s for rule in re.findall(r"([^{}]+)\{", style) for s in rule.split(",")]
    assert selectors and all(s.startswith("div.derive.derive") for s in selectors), selectors
    assert "<math" in derive.mlp([2, 1])._repr_html_()
    assert "PASSED" in verify.check(result, trials=1)._repr_html_()


# ---- the notebook page in a browser ---------------------------------------------------------------------------------

PROBE = """<script>
const box = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
                   return [Math.round(r.left), Math.round(r.width), s.marginLeft, s.marginRight, s.fontSize]; };
const markdown = [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')].map(box);
const paragraphs = [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown p')].map(box);
const chains = [...document.querySelectorAll('div.derive table.chain td:nth-child(3)')];
const rows = [...document.querySelectorAll('div.derive tr')];
document.title = JSON.stringify({markdown, paragraphs, chains: chains.length,
  align: [...new Set(chains.map(td => getComputedStyle(td).textAlign))],
  background: [...new Set(rows.map(tr => getComputedStyle(tr).backgroundColor))],
  width: document.documentElement.scrollWidth, viewport: window.innerWidth});
</script>"""


def render(nb, tmp_path):
    """What the probe sees of the notebook's nbconvert HTML page (JupyterLab's styles) laid out by Chromium."""
    from nbconvert import HTMLExporter
    page, _ = HTMLExporter().from_notebook_node(nb)
    path = tmp_path / "notebook.html"
    # a scroll bar on both pages, long or short, so that it takes the same width from each
    page = page.replace("</head>", "<style>html{overflow-y:scroll}</style></head>", 1)
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                          "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<title>(\{.*?\})</title>", run.stdout, re.S)
    assert found, run.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def without_outputs(nb):
    copy = deepcopy(nb)
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    return copy


browser = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


@browser
@pytest.mark.slow
@pytest.mark.parametrize("path", DISPLAYS, ids=lambda p: p.stem)
def test_displays_change_nothing_outside_themselves_in_a_notebook(path, tmp_path):
    pytest.importorskip("nbconvert")
    nb = nbformat.read(path, as_version=4)
    shown, bare = render(nb, tmp_path), render(without_outputs(nb), tmp_path)
    assert shown["markdown"] and shown["markdown"] == bare["markdown"], (shown["markdown"], bare["markdown"])
    assert shown["paragraphs"] == bare["paragraphs"]
    assert shown["chains"] > 0 and shown["align"] in (["left"], ["start"]), shown["align"]
    assert shown["background"] == ["rgba(0, 0, 0, 0)"], shown["background"]
    assert shown["width"] <= shown["viewport"], shown


@browser
@pytest.mark.slow
def test_an_output_whose_style_leaks_is_caught(tmp_path):
    pytest.importorskip("nbconvert")
    nb = nbformat.read(EXAMPLES / "seed004-two-layer.ipynb", as_version=4)
    leaky = without_outputs(nb)
    leaky.cells[1].outputs = [nbformat.v4.new_output(
        "display_data", data={"text/html": "<style>body{max-width:40em;margin:2em auto}</style><p>derived</p>"})]
    assert render(leaky, tmp_path)["markdown"] != render(without_outputs(nb), tmp_path)["markdown"]
