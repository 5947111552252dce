"""Every document the code cites is in the repository's docs/, with the section it names."""

from __future__ import annotations

import re
import tomllib
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


# A path into the package, in a document, a docstring or the configuration: the package moved into
# folders once (and modules were renamed), so no citation may be left naming a file that is gone.
PACKAGE_PATH = re.compile(r"(?<![\w/.-])aw_async/[\w/]+\.py")


def test_every_package_file_cited_anywhere_exists() -> None:
    documents = [ROOT / "README.md", ROOT / "RELIABILITY.md", *(ROOT / "docs").glob("*.md")]
    cited = 0
    for path in [*sources(), *documents, *(ROOT / "benchmarks").glob("*.md")]:
        for match in PACKAGE_PATH.finditer(path.read_text()):
            cited += 1
            assert (ROOT / match.group()).is_file(), (
                f"{path.relative_to(ROOT)} cites {match.group()}: no such file"
            )
    assert cited > 20


def design_diagram() -> list[set[str]]:
    """docs/design.md, "Layers": the diagram's rows, top to bottom, each the set of modules in its
    first column (``cli/`` read as ``aw_async.cli``; a first column that ends with a comma goes on in
    the next line)."""
    text = (ROOT / "docs" / "design.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    diagram = section.split("```\n", 2)[1]
    rows: list[set[str]] = []
    going_on = False
    for line in diagram.splitlines():
        first = line[:27].strip()
        if not first:
            continue
        names = {f"aw_async.{name.strip().rstrip('/')}" for name in first.split(",") if name.strip()}
        if going_on:
            rows[-1] |= names
        else:
            rows.append(names)
        going_on = first.endswith(",")
    return rows


def contract_layers() -> list[set[str]]:
    """pyproject.toml's import-linter ``layers`` contract (the one .ci/run holds the code to)."""
    configuration = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in configuration["contracts"] if c["type"] == "layers"]
    return [{name.strip() for name in layer.split(":")} for layer in layers]


def test_the_design_diagram_is_the_layering_contract() -> None:
    # Row for layer, top to bottom: a module drawn in another layer than the contract's, or a layer
    # the diagram leaves out, fails here rather than misleading a reader.
    assert design_diagram() == contract_layers()


def test_every_module_of_the_package_is_in_the_design_diagram() -> None:
    drawn = set().union(*design_diagram())
    package = ROOT / "aw_async"
    top = {f"aw_async.{p.stem}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    top |= {f"aw_async.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert top == drawn, f"missing from docs/design.md: {top - drawn}; drawn but gone: {drawn - top}"
