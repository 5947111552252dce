"""The ``aw-async`` command line (also ``python -m aw_async``): see :mod:`._main`."""

from __future__ import annotations

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
