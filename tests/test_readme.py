"""The README's Python snippets run, in order, and every `print(...)` shows the output the README states
(the `# ` comment lines right under it), so the README cannot drift from the code."""
import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def snippets():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


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


@pytest.mark.slow
def test_readme_snippets_run_and_print_what_they_say(tmp_path, monkeypatch):
    from derive.core import registry, rules
    from derive.networks.blocks import BLOCKS
    from verify.blocks import KINDS

    monkeypatch.chdir(tmp_path)
    # the "Extending" section registers an activation, a loss, an operator and a block: undone after the test
    saved = [(table, dict(table)) for table in (registry.ACTIVATIONS, registry.LOSSES, rules.OPERATORS, BLOCKS, KINDS)]
    try:
        _run_readme(tmp_path)
    finally:
        for table, content in saved:
            table.clear()
            table.update(content)


def _run_readme(tmp_path):
    namespace, checked = {}, 0
    for block in snippets():
        for code, expected in chunks(block):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, "README.md", "exec"), namespace)
            if expected is not None:
                assert buffer.getvalue().rstrip("\n") == expected, code
                checked += 1
    assert checked >= 2
    assert (tmp_path / "output" / "mine" / "derivation.html").exists()
