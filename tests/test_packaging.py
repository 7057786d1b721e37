"""The distribution as a user installs it: its license, metadata, type marker, version, and the hint a module that
needs the test extra gives without it."""
import importlib.metadata
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

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


def test_verify_exports_exactly_its_lazy_names():
    assert sorted(verify.__all__) == sorted(verify._HOME)   # written out for the API reference and type checkers
    assert all(getattr(verify, name) is not None for name in verify.__all__)


def test_the_strategies_say_how_to_install_hypothesis():
    code = "import sys; sys.modules['hypothesis'] = None\nimport verify.strategies"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == ("ImportError: verify.strategies needs hypothesis: "
                                                   "pip install 'matrix-backprop[test]'")


@pytest.mark.slow   # builds in an isolated environment
def test_the_sdist_leaves_out_what_needs_the_repository(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tops = {Path(name).parts[1] for name in tar.getnames() if len(Path(name).parts) > 1}
        names = tar.getnames()
    assert {"derive", "verify", "LICENSE", "README.md", "pyproject.toml"} <= tops, tops
    assert not tops & {"tests", "examples", "output", "bench"}, tops
    assert any(n.endswith("derive/py.typed") for n in names) and any(n.endswith("verify/py.typed") for n in names)


@pytest.mark.slow   # mypy over both packages
def test_the_public_api_type_checks(tmp_path):
    pytest.importorskip("mypy")
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    for fn in (derive.mlp, derive.backprop, derive.gradient, derive.hessian, verify.check,
               verify.assert_gradients_match):
        assert "return" in fn.__annotations__, fn.__name__   # the public API is annotated
