"""Run every example notebook top to bottom and save it with its outputs (`make notebooks`): the outputs a reader
sees on the repository's page, compared with a fresh run by tests/test_notebook.py."""
import sys
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent


def executed(path):
    """The notebook at `path` run in a fresh kernel, its volatile metadata (run times) left out."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(paths):
    for path in paths or sorted(HERE.glob("*.ipynb")):
        nbformat.write(executed(Path(path)), path)
        print(f"ran {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
