"""Every document the code cites is in the repository's docs/, with the section it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r'docs/([a-z-]+\.md)(?:,\s*"([^"]+)")?')
# The team's notes outside the repository, by the names they have there: never cited bare.
BARE = re.compile(r"(?<![/\w-])(API\.md|WIRE\.md|PUBLIC_API\.md|RescheduleMadeBooking\.txt|design\.md)")


def sources() -> list[Path]:
    """Every file whose text may cite a document: the code, the tests, the benchmarks, the project's
    own configuration and CI script."""
    code = [p for folder in ("aw_async", "benchmarks", "tests") for p in (ROOT / folder).rglob("*.py")]
    return [*code, ROOT / "pyproject.toml", ROOT / ".ci" / "run"]


def test_every_cited_document_and_section_exists() -> None:
    cited = 0
    for path in sources():
        for name, section in CITATION.findall(path.read_text()):
            document = ROOT / "docs" / name
            assert document.is_file(), f"{path.relative_to(ROOT)} cites docs/{name}, which does not exist"
            cited += 1
            section = " ".join(section.split())  # a citation may wrap across lines
            if section:
                headings = [
                    line.lstrip("#").strip().lower()
                    for line in document.read_text().splitlines()
                    if line.startswith("#")
                ]
                assert any(section.lower() in heading for heading in headings), (
                    f"{path.relative_to(ROOT)} cites docs/{name}, {section!r}: no such section"
                )
    assert cited > 30


def test_the_citation_checker_reads_tests_and_the_configuration() -> None:
    assert {ROOT / "pyproject.toml", ROOT / ".ci" / "run", Path(__file__).resolve()} <= set(sources())


def test_no_citation_points_outside_the_repository() -> None:
    for path in sources():
        if path.name == "test_docs.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = BARE.search(line)
            assert match is None, f"{path.relative_to(ROOT)}:{number} cites {match.group()} outside docs/"


# A test file's path, in a document, a docstring or the configuration (one of another project's, as
# "httpx's tests/...", is not ours). The tests moved into folders once: no citation may be left behind.
TEST_PATH = re.compile(r"(?<![\w/.-])(?<!'s )tests/[\w/]+\.py")


def test_every_test_file_cited_anywhere_exists() -> None:
    documents = [
        ROOT / "README.md",
        ROOT / "RELIABILITY.md",
        ROOT / "CHANGELOG.md",
        *(ROOT / "docs").glob("*.md"),
    ]
    cited = 0
    for path in [*sources(), *documents, *(ROOT / "benchmarks").glob("*.md")]:
        for match in TEST_PATH.finditer(path.read_text()):
            cited += 1
            assert (ROOT / match.group()).is_file(), (
                f"{path.relative_to(ROOT)} cites {match.group()}: no such file"
            )
    assert cited > 100
