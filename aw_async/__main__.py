"""``python -m aw_async``: the same as the ``aw-async`` command."""

from .cli import main

raise SystemExit(main())
