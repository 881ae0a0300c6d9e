"""MkDocs hook: the format specification and the changelog are part of the site, not copied.

``spec/format.md``, ``spec/types.md``, the manifest's JSON Schema, ``CHANGELOG.md`` and
``LICENSE`` are added to the site from the repository as they are, at their paths in the
repository, so their own relative links keep working. Pages of ``docs/`` link to other pages
and repository files from the repository's root (``/spec/format.md``, as GitHub and a reader
of the clone follow them; ``tests/test_repo_hygiene.py`` checks each resolves); this hook points
such links at the file's place in the site. A link to a repository file the site does not
serve (``README.md``, ``examples/...``) becomes its text and the path, since there is nothing
to link to.

Docstrings use Sphinx roles here and there (``:meth:`query```); the API reference shows them as
the code they name instead of the raw role.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]

# repository files the site serves, by their path in the repository (= their path in the site)
MOUNTED = (
    "spec/format.md",
    "spec/types.md",
    "spec/schemas/manifest.schema.json",
    "CHANGELOG.md",
    "LICENSE",
)

# a Sphinx cross-reference role left in a docstring (":meth:`query`"), as mkdocstrings renders it
_ROLE = re.compile(r":(?:py:)?(?:meth|class|func|mod|data|attr|exc|obj):<code>~?([^<]*)</code>")

_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s#]+)(#[^)\s]*)?\)")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


def on_files(files: Files, config: Any) -> Files:
    """Add the mounted repository files to the site."""
    for path in MOUNTED:
        files.append(
            File(
                path,
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links to repository files at their place in the site (or unlink them)."""
    docs_dir = Path(config["docs_dir"]).resolve()
    src_uri = page.file.src_uri
    mounted = src_uri in MOUNTED
    # where the page sits in the repository, which its relative links start from
    page_dir = (ROOT if mounted else docs_dir) / posixpath.dirname(src_uri)

    def rewrite(match: re.Match[str]) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if _SCHEME.match(target):
            return match.group(0)
        site_dir = posixpath.dirname(src_uri) or "."
        if target.startswith("/"):  # from the repository's root, as GitHub reads it
            on_disk = (ROOT / target.lstrip("/")).resolve()
            if on_disk.is_relative_to(docs_dir):
                page_path = on_disk.relative_to(docs_dir).as_posix()
                return f"[{text}]({posixpath.relpath(page_path, site_dir)}{anchor})"
        else:
            on_disk = (page_dir / target).resolve()
        if not on_disk.is_relative_to(ROOT) or on_disk.is_relative_to(docs_dir):
            return match.group(0)
        repo_path = on_disk.relative_to(ROOT).as_posix()
        if repo_path in MOUNTED:
            if not mounted:
                return f"[{text}]({posixpath.relpath(repo_path, site_dir)}{anchor})"
            return match.group(0)
        if repo_path in text:
            return f"{text} (in the repository)"
        return f"{text} (`{repo_path}` in the repository)"

    return _LINK.sub(rewrite, markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Show Sphinx roles of docstrings (``:func:`open```) as the code they name."""
    return _ROLE.sub(lambda m: f"<code>{m.group(1)}</code>", html)
