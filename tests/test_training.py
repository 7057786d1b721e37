"""Training with derived gradients on real data (examples/training.py): on scikit-learn's digits and on a sequence task
for the recurrent block, the generated NumPy gradients with SGD, net.torch() with torch.optim.SGD and the network
written in plain PyTorch autograd give the same loss at every one of 200 steps (1e-6 relative, float64), and the
networks learn; output/training/ holds what a run writes."""
import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the training run needs the train extra (PyTorch)")
pytest.importorskip("sklearn", reason="the digits ship with scikit-learn (the train extra)")

ROOT = Path(__file__).resolve().parent.parent


def _training():
    spec = importlib.util.spec_from_file_location("training", ROOT / "examples" / "training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


training = _training()


@pytest.fixture(scope="module")
def runs():
    return {"digits": training.run_digits(), "sequences": training.run_sequences()}


@pytest.mark.slow   # 200 steps, three ways, two tasks: about 10 s
@pytest.mark.parametrize("task, least", [("digits", 0.9), ("sequences", 0.85)])
def test_the_three_runs_agree_at_every_step_and_learn(runs, task, least):
    run = runs[task]
    assert all(len(curve) == training.STEPS for curve in run["curves"].values())
    gap = training.agreement(run)
    assert gap["b"] <= 1e-6 and gap["c"] <= 1e-6, gap
    assert run["curves"]["a"][-1] < 0.3 * run["curves"]["a"][0]
    assert run["accuracy"]["a"] >= least and run["accuracy"]["a"] == run["accuracy"]["b"], run["accuracy"]


@pytest.mark.slow
def test_the_committed_report_is_what_a_run_gives(runs, tmp_path):
    committed = (ROOT / "output" / "training" / "README.md").read_text(encoding="utf-8")
    fresh = training.report([runs["digits"], runs["sequences"]])
    numbers = re.compile(r"\d+\.\d{6}|\d+\.\d%")   # final losses to 6 decimals, accuracies: not the rounding gaps
    assert numbers.findall(committed) == numbers.findall(fresh)
    for task in ("digits", "sequences"):
        assert (ROOT / "output" / "training" / f"{task}.svg").exists()
    training.draw(runs["digits"], tmp_path / "one.svg")
    training.draw(runs["digits"], tmp_path / "two.svg")
    assert (tmp_path / "one.svg").read_bytes() == (tmp_path / "two.svg").read_bytes()   # deterministic figures
