"""The journal: what the client remembers about reschedules, because the server does not.

RescheduleMadeBooking creates a new booking and spends credits, and nothing on the server marks the
original as rescheduled (docs/api.md, "What the server does not tell a client"). So the client keeps,
for each booking of each API root, its last attempt, the attempt's fence, owner, start and outcome,
and decides from it whether a reschedule may be sent: the rules are in :mod:`._rules`, the stores
(:class:`MemoryJournal`, :class:`SqliteJournal`, :class:`PostgresJournal`) only keep them.

Which to use (docs/design.md, "The journal"): one process, or several on one host: the default, a
:class:`SqliteJournal` in the user's state folder; several hosts: a :class:`PostgresJournal`; tests
and throwaway scripts: a :class:`MemoryJournal`.
"""

from __future__ import annotations

from ._memory import MemoryJournal
from ._open import default_journal_path
from ._postgres import PostgresJournal
from ._rules import AttemptState, Decider, JournalEntry, Key, Terms, outcome_of
from ._sqlite import SqliteJournal
from ._store import Claim, Clocks, Journal

__all__ = [
    "AttemptState",
    "Claim",
    "Clocks",
    "Decider",
    "Journal",
    "JournalEntry",
    "Key",
    "MemoryJournal",
    "PostgresJournal",
    "SqliteJournal",
    "Terms",
    "default_journal_path",
    "outcome_of",
]
