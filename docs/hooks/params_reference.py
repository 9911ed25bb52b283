"""The parameters reference in docs/parameters.md: written into the page from
`mlcycle.core.paramsdoc.reference()` (types and defaults from the typed config, meanings from the
lines `mlcycle init` writes as params.yaml comments) by `make docs` (`python
docs/hooks/params_reference.py`), so the page reads the same in the repository and on the site. As
an MkDocs hook it fails the build when the page's reference is stale; tests/code/test_docs.py
checks it too."""

from __future__ import annotations

import sys
from pathlib import Path

from mlcycle.core import paramsdoc

PAGE = Path(__file__).resolve().parents[1] / "parameters.md"
# where the page holds the reference
BEGIN = "<!-- parameters reference: generated from mlcycle.core.paramsdoc.reference() by `make docs`; do not edit -->"
END = "<!-- end of the generated parameters reference -->"


def with_reference(page: str) -> str:
    """The parameters page with the current reference between BEGIN and END."""
    if BEGIN not in page or END not in page:
        raise ValueError(f"docs/parameters.md: the lines {BEGIN!r} and {END!r} mark where the reference goes")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{paramsdoc.reference().rstrip()}\n\n{END}{tail}"


def write_page(path: Path = PAGE) -> bool:
    """Rewrite the reference in the parameters page; True when it changed."""
    old = path.read_text(encoding="utf-8")
    new = with_reference(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "parameters.md" and with_reference(markdown) != markdown:
        raise ValueError("docs/parameters.md: its parameters reference is stale; `make docs` rewrites it")
    return markdown


if __name__ == "__main__":
    print("docs/parameters.md: reference " + ("rewritten" if write_page() else "current"), file=sys.stderr)
