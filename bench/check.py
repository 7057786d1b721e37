"""Grading a folder of hand derivations with `derive check FOLDER --spec … --csv …`, against the issue's budget.

Writes 30 answers for a 3 → 4 → 2 sigmoid network (every sixth one right, the others each with one classic mistake,
in LaTeX, text and Markdown; six to eight rows, differentials among them), grades the folder in this process with
the command's own entry point, and prints the median of 3 runs, the time per answer and the ratio to the 30 s the
issue allows, as graded by default (at random points) and with --exact (each right line also proved); then one answer
(no proofs) against verify.check of the same network, the reference in this process.
"""
import contextlib
import csv
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive  # noqa: E402
import verify  # noqa: E402
from derive.cli.main import main  # noqa: E402
from _timing import timed  # noqa: E402

RIGHT = r"""
\begin{aligned}
\mathrm{d}L &= \operatorname{tr}\big(\delta^{(2)\top}\,\mathrm{d}Z^{(2)}\big) \\
 &= \operatorname{tr}\big(A^{(1)}\delta^{(2)\top}\,\mathrm{d}W^{(2)}\big) \\
\Rightarrow \frac{\partial L}{\partial W^{(2)}} &= \delta^{(2)} A^{(1)\top} \\
\delta^{(2)} &= \frac{1}{m}(A^{(2)} - Y) \odot \sigma'(Z^{(2)}) \\
\delta^{(1)} &= (W^{(2)\top}\delta^{(2)}) \odot \sigma'(Z^{(1)}) \\
\frac{\partial L}{\partial W^{(1)}} &= \delta^{(1)} X^\top \\
\frac{\partial L}{\partial b^{(1)}} &= \delta^{(1)}\mathbf{1}
\end{aligned}
"""
MISTAKES = [(r"\sigma'(Z^{(1)})", r"\sigma'(A^{(1)})"), (r"\odot \sigma'(Z^{(1)})", ""),
            (r"\frac{1}{m}(A^{(2)} - Y)", "(A^{(2)} - Y)"), (r"\delta^{(1)}\mathbf{1}", r"\delta^{(1)}"),
            (r"= \delta^{(2)} A^{(1)\top}", r"= A^{(1)} \delta^{(2)\top}")]


def answers(folder):
    for k in range(30):
        text = RIGHT if k % 6 == 0 else RIGHT.replace(*MISTAKES[k % len(MISTAKES)], 1)
        suffix = (".tex", ".md", ".txt")[k % 3]
        if suffix == ".md":
            text = "My answer:\n\n$$" + text + "$$\n"
        elif suffix == ".txt":
            text = text.replace(r"\begin{aligned}", "").replace(r"\end{aligned}", "").replace("&", "") \
                       .replace("\\\\\n", "\n")
        (folder / f"answer{k:02d}{suffix}").write_text(text, encoding="utf-8")


def main_():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "answers"
        folder.mkdir()
        answers(folder)
        spec = Path(tmp) / "net.toml"
        spec.write_text('sizes = [3, 4, 2]\nactivation = "sigmoid"\n', encoding="utf-8")
        argv = ["check", str(folder), "--spec", str(spec), "--csv", str(Path(tmp) / "marks.csv")]

        def grade(*options):
            with contextlib.redirect_stdout(io.StringIO()):
                return main([*argv, *options])
        code, seconds = timed(grade, limit=120)
        _, proved = timed(lambda: grade("--exact"), limit=300)
        with (Path(tmp) / "marks.csv").open(encoding="utf-8") as marks:
            right = sum(1 for row in csv.DictReader(marks) if row["first_error"] == "")
        net = derive.mlp([3, 4, 2], activation="sigmoid")
        one = (folder / "answer00.tex").read_text(encoding="utf-8")
        _, single = timed(lambda: verify.check_derivation(one, net, exact=False))
        result = derive.backprop(net)
        _, reference = timed(lambda: verify.check(result, trials=3))
    print(f"grading 30 answers: {seconds:.2f} s median of 3 (exit {code}; {right} right, {30 - right} with a first "
          f"error), {seconds / 30 * 1000:.0f} ms per answer, {seconds / 30:.3f} of the 30 s budget; with --exact "
          f"(each right line proved by SymPy): {proved:.2f} s, {proved / 30:.3f} of the budget")
    print(f"one answer, no proofs: {single * 1000:.0f} ms; verify.check of the same network (3 trials, exact proof): "
          f"{reference * 1000:.0f} ms; ratio {single / reference:.2f}")


if __name__ == "__main__":
    main_()
