"""The README and the guide's pages: their Python snippets run, in the README's reading order, and every
`print(...)` shows the output the page states (the `# ` comment lines right under it), so no page can drift from
the code; the site builds with warnings as errors, holds every page, the API reference of every public name, the
rendered examples and the notebooks."""
import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import derive
import verify

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def pages():
    """The README, then the guide's pages in the order the README links them."""
    linked = re.findall(r"\]\((docs/[\w-]+\.md)\)", README.read_text(encoding="utf-8"))
    return [README, *(ROOT / page for page in linked)]


def snippets(page):
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def chunks(block):
    """[(code, expected output or None)]: code up to each print(...) whose output follows as # lines."""
    lines, out, code, k = block.splitlines(), [], [], 0
    while k < len(lines):
        code.append(lines[k])
        if lines[k].startswith("print(") and k + 1 < len(lines) and lines[k + 1].startswith("# "):
            expected = []
            while k + 1 < len(lines) and lines[k + 1].startswith("#"):
                expected.append(lines[k + 1][2:])
                k += 1
            out.append(("\n".join(code), "\n".join(expected)))
            code = []
        k += 1
    out.append(("\n".join(code), None))
    return out


def test_every_guide_page_is_linked_from_the_readme_and_in_the_site_navigation():
    guide = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = [p.name for p in pages()[1:]]
    assert sorted(linked) == sorted(guide) and len(set(linked)) == len(linked)
    nav = re.findall(r":\s*([\w/.-]+\.md)$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M)
    assert [p for p in nav if p in guide] == linked   # the same order on the site as in the README
    assert len(README.read_text(encoding="utf-8").splitlines()) < 100   # the overview, the commands, the links


def test_every_public_name_is_in_the_api_reference():
    for package in (derive, verify):
        page = (ROOT / "docs" / "api" / f"{package.__name__}.md").read_text(encoding="utf-8")
        documented = set(re.findall(rf"^::: {package.__name__}\.(\w+)$", page, flags=re.M))
        assert set(package.__all__) <= documented, set(package.__all__) - documented


@pytest.mark.slow
def test_every_snippet_on_every_page_runs_and_prints_what_it_says(tmp_path, monkeypatch):
    from derive.core import registry, rules
    from derive.networks.blocks import BLOCKS
    from verify.blocks import KINDS

    monkeypatch.chdir(tmp_path)
    # the "Extending" page registers an activation, a loss, an operator and a block: undone after the test
    saved = [(table, dict(table)) for table in (registry.ACTIVATIONS, registry.LOSSES, rules.OPERATORS, BLOCKS, KINDS)]
    try:
        _run_pages(tmp_path)
    finally:
        for table, content in saved:
            table.clear()
            table.update(content)


def _run_pages(tmp_path):
    namespace, checked = {}, {}
    for page in pages():
        checked[page.name] = 0
        needed = set(re.findall(r"^import (\w+)", "\n".join(snippets(page)), flags=re.M))
        if any(importlib.util.find_spec(name) is None for name in needed):
            continue   # a page on an optional extra (PyTorch, JAX) where it is not installed; CI installs it
        for block in snippets(page):
            for code, expected in chunks(block):
                buffer = io.StringIO()
                with contextlib.redirect_stdout(buffer):
                    exec(compile(code, str(page.relative_to(ROOT)), "exec"), namespace)
                if expected is not None:
                    assert buffer.getvalue().rstrip("\n") == expected, (page.name, code)
                    checked[page.name] += 1
    for name in ("README.md", "tour.md", "networks.md", "blocks.md", "second-order.md", "documents.md",
                 "extending.md"):
        assert checked[name] >= 1, (name, checked)   # every page that shows output has it compared
    assert (tmp_path / "output" / "mine" / "derivation.html").exists()


@pytest.mark.slow   # builds the site
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    for page in pages()[1:]:
        built = (tmp_path / page.with_suffix(".html").name).read_text(encoding="utf-8")
        # a list item the Markdown did not nest reads as "… . - next item" inside a paragraph
        paragraphs = re.findall(r"<p>(.*?)</p>", built, flags=re.S)
        assert not [p for p in paragraphs if re.search(r"(^|\n)- |[.;)] - ", p)], page.name
    home = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="tour.html"' in home and 'href="docs/' not in home   # the README's links, rewritten for the site
    api = (tmp_path / "api" / "derive.html").read_text(encoding="utf-8")
    assert 'id="derive.backprop"' in api and "from one sweep" in api   # the docstring, not only the name
    assert 'id="verify.assert_gradients_match"' in (tmp_path / "api" / "verify.html").read_text(encoding="utf-8")
    # the rendered examples, reached from the guide's links (written for the repository as ../output/...)
    documents = (tmp_path / "documents.html").read_text(encoding="utf-8")
    for link in ("output/seed004-two-layer/page-2.png", "examples/seed004-two-layer.html"):
        assert f'"{link}"' in documents and (tmp_path / link).exists(), link
    assert "derive" in (tmp_path / "examples" / "block-network.html").read_text(encoding="utf-8")
    for example in (ROOT / "output").glob("*/derivation.html"):
        assert (tmp_path / example.relative_to(ROOT)).read_bytes() == example.read_bytes()
    assert not list(tmp_path.rglob("*.pdf"))
