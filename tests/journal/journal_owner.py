"""A process that claims a booking in a sqlite journal and holds the claim until it is killed:
``python -m tests.journal.journal_owner JOURNAL API_ROOT BOOKING_ID``. Prints ``claimed <owner>`` once the
claim is committed (or ``refused``), then sleeps."""

from __future__ import annotations

import asyncio
import sys

from aw_async.journal import Key, SqliteJournal


async def main(path: str, api_root: str, booking_id: int) -> None:
    journal = SqliteJournal(path)
    claim = await journal.claim(Key(api_root, booking_id), force=False, settle=120.0)
    print(f"claimed {journal.owner}" if claim.granted else "refused", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
