"""MkDocs hooks: the README as the home page, the rendered example documents and the example notebooks in the site."""
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def on_files(files, config):
    """Add README.md as index.md, output/ (but PDFs) as it is, examples/*.ipynb as nbconvert's JupyterLab page."""
    # the README links the guide's pages as docs/<page>.md; on the site they sit beside the home page
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("](docs/", "](")
    files.append(File.generated(config, "index.md", content=readme))
    for path in sorted((ROOT / "output").rglob("*")):
        if path.is_file() and path.suffix != ".pdf":
            files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    for path in sorted((ROOT / "examples").glob("*.ipynb")):
        files.append(File.generated(config, f"examples/{path.stem}.html", content=_notebook_html(path)))
    return files


def _notebook_html(path):
    """The notebook with its committed outputs, as JupyterLab shows it (nothing is executed)."""
    import nbconvert
    import nbformat

    html, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(path, as_version=4))
    return html


def on_page_markdown(markdown, page, config, files):
    """Links written for the repository (../output/…, ../examples/*.ipynb) pointed at their copies in the site."""
    if page.file.src_uri.count("/"):   # the API pages, output/README.md: nothing to rewrite
        return markdown
    markdown = markdown.replace("](../output/", "](output/")
    return re.sub(r"\]\(\.\./examples/([\w-]+)\.ipynb\)", r"](examples/\1.html)", markdown)
