"""MkDocs hook: the parameters page must hold the current reference (`make docs` writes it into
docs/parameters.md from `mlcycle.core.paramsdoc.reference()` before building: types and defaults
from the typed config, meanings from the lines `mlcycle init` writes as params.yaml comments), so
the page reads the same in the repository and on the site, and a stale one fails the build."""

from mlcycle.core import paramsdoc


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "parameters.md" and paramsdoc.with_reference(markdown) != markdown:
        raise ValueError("docs/parameters.md: its parameters reference is stale; `make docs` rewrites it")
    return markdown
