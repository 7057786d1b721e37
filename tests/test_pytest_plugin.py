"""The pytest plugin: it costs a run that does not use it no import of NumPy, SymPy or derive; a failing gradcheck
shows the test's own line and the table, not the toolkit's frames."""
import subprocess
import sys
import textwrap

USER_TEST = textwrap.dedent('''
    import numpy as np
    import derive


    def my_backprop(X, Y, W1, b1, W2, b2):
        m = X.shape[1]
        Z1 = W1 @ X + b1
        A1 = 1 / (1 + np.exp(-Z1))
        A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
        d2 = (A2 - Y) / m * A2 * (1 - A2)
        d1 = W2.T @ d2                       # σ′(Z1) forgotten
        return {"W1": d1 @ X.T, "b1": d1.sum(1, keepdims=True), "W2": d2 @ A1.T, "b2": d2.sum(1, keepdims=True)}


    def test_my_backprop(gradcheck):
        gradcheck(my_backprop, derive.mlp([3, 4, 2], activation="sigmoid"))
''')


def test_the_plugin_imports_nothing_heavy_until_a_test_asks_for_gradcheck():
    code = ("import sys, verify.pytest_plugin; "
            "print([m for m in ('numpy', 'sympy', 'derive', 'verify.assertions') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_a_failing_gradcheck_shows_the_tests_line_and_the_table_not_the_toolkits_frames(tmp_path):
    (tmp_path / "test_mine.py").write_text(USER_TEST)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert ">       gradcheck(my_backprop, derive.mlp([3, 4, 2], activation=\"sigmoid\"))" in out, out
    assert "W1, b1: 2 of 4 gradients differ" in out and "σ′ left out of δ" in out and "in layer 1" in out, out
    assert "assertions.py" not in out and "def assert_gradients_match" not in out, out
    rows = [line.split()[1:3] for line in out.splitlines() if line.startswith("E  ") and len(line.split()) > 3]
    assert ["W2", "ok"] in rows and ["b1", "wrong"] in rows, out
