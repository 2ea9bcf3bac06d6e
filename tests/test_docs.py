"""Every documentation reference resolves inside the repository.

Checked: markdown links ``[text](target)`` in README.md and docs/*.md (relative to the file that
holds them), mentions of ``docs/<name>.md`` anywhere in those files and in the source tree
(docstrings, CLI help, preset comments), and ``docs/method.md section N`` citations against the
section headings of docs/method.md. A doc that is renamed or deleted fails here, naming the file
and line that still points at it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "src").rglob("*.yaml")) + sorted(
    (ROOT / "benchmarks").rglob("*.py")
)
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

#: ``[text](target)``; the target stops at whitespace or ``)``.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: ``docs/<name>.md`` as a path mention (not the tail of a longer path such as ``x/docs/a.md``).
DOCS_MENTION = re.compile(r"(?<![\w./-])(docs/[\w.-]+\.md)")
#: An absolute path to a markdown file: a reference to something outside the repository.
ABSOLUTE_MD = re.compile(r"(?<![\w.~-])(/[\w.-]+(?:/[\w.-]+)+\.md)\b")
#: ``docs/method.md section 2.6`` (also "``docs/method.md`` section 2").
METHOD_SECTION = re.compile(r"method\.md\W{0,4}\s+section\s+(\d+(?:\.\d+)*)")


def _lines(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def _inside_repo(target: Path) -> bool:
    try:
        target.resolve().relative_to(ROOT)
    except ValueError:
        return False
    return True


def test_the_files_checked_exist() -> None:
    assert (ROOT / "README.md").is_file()
    assert len(MARKDOWN) > 3 and len(SOURCES) > 20


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve_inside_the_repository(doc: Path) -> None:
    broken = []
    for number, text in _lines(doc):
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (https:, mailto:) or an anchor in the same page
            path = target.split("#", 1)[0]
            resolved = (doc.parent / path) if not path.startswith("/") else Path(path)
            if path.startswith("/") or not _inside_repo(resolved) or not resolved.exists():
                broken.append(f"{_where(doc, number)}: [..]({target})")
    assert not broken, "links that do not resolve inside the repository:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_mentions_no_path_outside_the_repository(doc: Path) -> None:
    outside = [
        f"{_where(doc, number)}: {m}" for number, text in _lines(doc) for m in ABSOLUTE_MD.findall(text)
    ]
    assert not outside, "absolute paths to documents outside the repository:\n" + "\n".join(outside)


def test_every_docs_path_mentioned_exists() -> None:
    missing = []
    for path in MARKDOWN + SOURCES:
        for number, text in _lines(path):
            for mention in DOCS_MENTION.findall(text):
                if not (ROOT / mention).is_file():
                    missing.append(f"{_where(path, number)}: {mention}")
    assert not missing, "docs/*.md mentioned but not in the repository:\n" + "\n".join(missing)


def test_method_sections_cited_exist() -> None:
    headings = set()
    for _, text in _lines(DOCS / "method.md"):
        m = re.match(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", text) or re.match(r"^\*\*(\d+(?:\.\d+)+)\s", text)
        if m:
            headings.add(m.group(1))
    assert {"1", "2", "3", "4"} <= headings
    missing = []
    for path in MARKDOWN + SOURCES:
        # A citation may wrap onto the next line ("docs/method.md``\nsection 2"): join the lines.
        text = " ".join(line for _, line in _lines(path))
        for section in METHOD_SECTION.findall(text):
            if section not in headings:
                missing.append(f"{path.relative_to(ROOT)}: method.md section {section}")
    assert not missing, "docs/method.md sections cited but not present:\n" + "\n".join(missing)
