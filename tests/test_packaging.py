"""The distribution as a user installs it: its license, metadata, type marker, version, and the hint a module that
needs the test extra gives without it."""
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import derive
import verify

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_is_a_file_and_an_spdx_expression():
    meta = importlib.metadata.metadata("matrix-backprop")
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert meta["License-Expression"] == "MIT" and "LICENSE" in meta.get_all("License-File")


def test_the_metadata_has_urls_classifiers_and_keywords():
    meta = importlib.metadata.metadata("matrix-backprop")
    assert {url.split(",")[0] for url in meta.get_all("Project-URL")} >= {"Homepage", "Documentation", "Issues"}
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Framework :: Pytest" in classifiers
    assert "backpropagation" in meta["Keywords"]


def test_the_packages_are_typed_and_versioned():
    assert (Path(derive.__file__).parent / "py.typed").exists() and (Path(verify.__file__).parent / "py.typed").exists()
    assert derive.__version__ == importlib.metadata.version("matrix-backprop")


def test_the_strategies_say_how_to_install_hypothesis():
    code = "import sys; sys.modules['hypothesis'] = None\nimport verify.strategies"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == ("ImportError: verify.strategies needs hypothesis: "
                                                   "pip install 'matrix-backprop[test]'")
