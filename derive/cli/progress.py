"""What a long command shows while it works, and a job's folder written whole or not at all."""
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

# a step that takes longer than this (seconds) is reported when it ends
LONG = 1.0


def steps(quiet=False, stream=None):
    """A context manager factory, step(label): a spinner on stderr while the step runs, and its time once it ends
    where it took more than a second; nothing where `quiet` or stderr is not a terminal."""
    stream = sys.stderr if stream is None else stream
    if quiet or not stream.isatty():
        return lambda label: contextlib.nullcontext()
    from rich.console import Console
    console = Console(file=stream)

    @contextlib.contextmanager
    def step(label):
        started = time.monotonic()
        with console.status(f"{label}…"):
            yield
        took = time.monotonic() - started
        if took > LONG:
            console.print(f"[green]✓[/green] {label} ({took:.1f} s)")
    return step


@contextlib.contextmanager
def replacing(folder):
    """A new empty folder beside `folder` to write into; when the block ends without an error it takes the place of
    `folder` (whose earlier files are gone), else it is removed and `folder` stays as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    new.chmod(0o755)   # as a folder made by mkdir is (mkdtemp's is private)
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = folder.parent / f"{new.name.replace('.new-', '.old-', 1)}"
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
