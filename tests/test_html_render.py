"""Every example page rendered in headless Chromium: no page wider than a 1280-pixel viewport, no MathML error,
every formula drawn (non-zero width). Skipped where Chromium is not installed (.ci/run installs it)."""
import re
import shutil
import subprocess

import pytest

from derive.cli.examples import EXAMPLES
from derive.documents import html_document

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed"), pytest.mark.slow]   # browser renders

PROBE = """<script>
const maths = [...document.querySelectorAll('math')];
const blank = maths.filter(m => m.getBoundingClientRect().width === 0).length;
document.title = `width=${document.documentElement.scrollWidth};viewport=${window.innerWidth};` +
                 `maths=${maths.length};blank=${blank};errors=${document.querySelectorAll('merror').length}`;
</script>"""


def render(page, tmp_path):
    """{width, viewport, maths, blank, errors} of the page as Chromium lays it out."""
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                          "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<title>width=(\d+);viewport=(\d+);maths=(\d+);blank=(\d+);errors=(\d+)</title>", run.stdout)
    assert found, run.stderr[-2000:]
    return dict(zip(("width", "viewport", "maths", "blank", "errors"), map(int, found.groups())))


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_page_fits_the_viewport_and_draws_every_formula(name, tmp_path):
    example = EXAMPLES[name]
    seen = render(html_document(example.derive(), title=example.title), tmp_path)
    assert seen["maths"] > 5 and seen["errors"] == 0 and seen["blank"] == 0, seen
    assert seen["width"] <= seen["viewport"], seen


def test_a_page_too_wide_is_caught(tmp_path):
    seen = render("<html><body><div style='width:3000px'>wide</div></body></html>", tmp_path)
    assert seen["width"] > seen["viewport"]
