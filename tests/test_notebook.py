"""The example notebook runs top to bottom (nbclient) and displays the derivation, the network and the report
richly: the same textbook chain as the documents, in MathML."""
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "seed004-two-layer.ipynb"


def test_example_notebook_runs_and_shows_the_derivation():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    html = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "text/html" in out.get("data", {})]
    network, derivation, report = html
    assert "<math" in network and "pre-activations" in network
    assert "The output layer" in derivation and "<math" in derivation and "Summary" in derivation
    assert "PASSED" in report


def test_reprs_are_the_documents_html():
    import derive
    import verify
    result = derive.backprop(derive.mlp([2, 2, 1], loss="bce", samples=2))
    assert result._repr_html_().startswith("<div class=derive>")
    assert "<math" in derive.mlp([2, 1])._repr_html_()
    assert "PASSED" in verify.check(result, trials=1)._repr_html_()
