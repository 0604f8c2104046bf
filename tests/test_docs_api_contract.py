"""docs/spectrum-api.md: the repository's own API contract, and the citations that point at it.

Code cites a section as ``docs/spectrum-api.md, Rate limiting`` (or with the heading in
quotes). A citation whose heading does not exist sends a reader nowhere, so every one in
the repository must name a real section heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "spectrum-api.md"
CITATION = "docs/spectrum-api.md" + ", "  # split, so this line is not a citation
MARKS = ("**[documented]**", "**[public client]**", "**[assumption]**")
# Sections about the page or the sandbox, not about one point of the contract.
NOT_A_POINT = {"How to read this page", "How the sandbox plays reads"}


def _headings() -> list[str]:
    return re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)


def _sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _cited(text: str) -> list[str]:
    """What follows each citation, with line breaks and comment marks joined."""
    flat = re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)
    return [flat[m.end() : m.end() + 80] for m in re.finditer(re.escape(CITATION), flat)]


def _repository_files() -> list[Path]:
    skip = {".venv", ".git", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    return [
        path
        for path in REPO.rglob("*")
        if path.suffix in {".py", ".md", ".toml", ".ipynb", ".sh", ".txt", ".cfg"}
        and path.is_file()
        and not skip & set(path.relative_to(REPO).parts)
    ]


def test_the_contract_is_in_the_repository_with_the_sections_code_cites() -> None:
    headings = _headings()

    assert len(headings) == len(set(headings)), "headings must be unique to be cited"
    for needed in (
        "Environments",
        "Update workflow status",
        "Not found: 404 and 409",
        "Missing-id parsing",
        "Rate limiting",
        "Throttle or refused token (403)",
        "429 and Retry-After",
        "Retries",
        "Redirects",
        "Timeouts and answer sizes",
        "Identifier lengths",
        "Reading orders back",
        "Search",
        "Line-level workflowStatus",
        "Alternative field names",
    ):
        assert needed in headings


def test_every_point_is_marked_and_says_what_the_toolkit_does() -> None:
    for heading, body in _sections().items():
        if heading in NOT_A_POINT:
            continue
        assert any(mark in body for mark in MARKS), heading
        assert "**Toolkit:**" in body, heading


def test_the_contract_stands_alone() -> None:
    text = DOC.read_text(encoding="utf-8")

    assert "shared" not in text
    assert "/work/" not in text


@pytest.mark.parametrize("path", _repository_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_citation_names_an_existing_section(path: Path) -> None:
    headings = _headings()
    text = path.read_text(encoding="utf-8", errors="replace")

    for cited in _cited(text):
        unquoted = cited.lstrip("\"'“")
        assert any(unquoted.startswith(h) for h in headings), (
            f"{path.relative_to(REPO)} cites a section that does not exist: {cited!r}"
        )


@pytest.mark.parametrize(
    "folder", ["spectrum_tools/sandbox", "docs"], ids=lambda folder: folder.replace("/", ".")
)
def test_the_sandbox_and_docs_point_nowhere_outside_the_repository(folder: str) -> None:
    for path in sorted((REPO / folder).rglob("*")):
        if path.is_file() and path.suffix in {".py", ".md"}:
            text = path.read_text(encoding="utf-8")
            assert "../shared" not in text, path
            assert "/work/" not in text, path
