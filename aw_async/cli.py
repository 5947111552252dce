"""The ``aw-async`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``aw-async``."""
    parser = argparse.ArgumentParser(
        prog="aw-async", description="An asyncio client for the AdultWork.com REST API."
    )
    parser.add_argument("--version", action="version", version=f"aw-async {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aw-async`` with ``argv`` (default: the process's arguments); return the exit code."""
    build_parser().parse_args(argv)
    return 0
