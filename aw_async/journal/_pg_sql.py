"""The SQL of ``PostgresJournal``: its versioned schema, and the statements that write the rules.

Every statement names the schema it works in (quoted), never the search path. The rules
(:mod:`._rules`) are written in SQL only where a transition is one statement: the claim
(:data:`CLAIM`, :func:`~._rules.may_claim`), the outcome and the renewal (compare-and-set on the
fence and the owner: :func:`~._rules.may_record_outcome`, :func:`~._rules.may_renew`). Verdicts and
resolutions lock the row and ask :mod:`._rules` in Python.

Liveness: an owner holds a session-level advisory lock whose key its token names (``owner_key``).
:func:`owner_alive` asks ``pg_locks`` whether anyone holds it. It is a function, called per row,
because a view read once per statement could be older than a row that ``ON CONFLICT`` or an
``UPDATE`` re-reads after waiting for its lock: an owner that took its lock after that reading
would look dead. A function call reads the lock table when the row is decided on, after the row
was written, and an owner's lock is always taken before it writes anything.

Time is the database's: ``now()`` dates every write and measures every age.
"""

from __future__ import annotations

import hashlib

__all__ = ["SCHEMA_VERSION", "Statements", "lock_key"]

#: Bump it with any change that an older aw-async could misread: it then refuses the journal.
SCHEMA_VERSION = 1


def lock_key(text: str) -> int:
    """A 63-bit advisory lock key named by ``text`` (the same in every process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


# The index attempts_unsettled holds the outstanding entries (in flight or unknown); its name is
# schema version 1's, kept: renaming an index is a migration, not a rename.
_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE {s}.attempts (
    api_root          text COLLATE "C" NOT NULL,
    booking_id        bigint NOT NULL,
    state             text NOT NULL CHECK (state IN ('in_flight', 'rescheduled', 'refused', 'unknown')),
    attempt           bigint NOT NULL,
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    settle_seconds    double precision NOT NULL,
    owner             text,
    owner_key         bigint,
    server_started_at timestamptz,
    terms             text,
    fingerprint       text,
    new_booking_id    bigint,
    decided_by        text CHECK (decided_by IN ('answer', 'reconciliation', 'user')),
    PRIMARY KEY (api_root, booking_id)
);
CREATE INDEX attempts_unsettled ON {s}.attempts (api_root, fingerprint)
    WHERE state IN ('in_flight', 'unknown');
CREATE INDEX attempts_settled ON {s}.attempts (updated_at) WHERE state IN ('refused', 'rescheduled');
CREATE TABLE {s}.results (
    api_root       text COLLATE "C" NOT NULL,
    new_booking_id bigint NOT NULL,
    booking_id     bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (api_root, new_booking_id)
);
CREATE INDEX results_recorded ON {s}.results (recorded_at);
CREATE TABLE {s}.server_offsets (
    api_root   text COLLATE "C" PRIMARY KEY,
    minutes    integer NOT NULL,
    learned_at timestamptz NOT NULL
);
CREATE FUNCTION {s}.owner_alive(owner_key bigint) RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database())
          AND l.classid = (owner_key >> 32)::oid AND l.objid = (owner_key & 4294967295)::oid)
$$;
CREATE TABLE {s}.schema_version (version integer NOT NULL);
INSERT INTO {s}.schema_version (version) VALUES ({version});
"""

#: What a read gives, in this order: the row, its age and (for another owner's attempt in flight)
#: whether that owner's session lives. $1 is the reader's own token: its own attempts are alive
#: while it runs them, which only the process knows.
COLUMNS = (
    "api_root",
    "booking_id",
    "state",
    "attempt",
    "started_at",
    "updated_at",
    "settle_seconds",
    "owner",
    "server_started_at",
    "terms",
    "new_booking_id",
    "decided_by",
)
_ENTRY = ", ".join(f"a.{c}" for c in COLUMNS)
_READ = (
    _ENTRY + ", extract(epoch FROM now() - a.started_at)::float8 AS age,"
    " CASE WHEN a.state = 'in_flight' AND a.owner IS DISTINCT FROM $1"
    " THEN {s}.owner_alive(a.owner_key) END AS lock_alive"
)


class Statements:
    """The statements of one schema."""

    def __init__(self, schema: str) -> None:
        s = quote(schema)
        self.schema = schema
        self.create = _DDL.format(s=s, version=SCHEMA_VERSION)
        self.setup_lock = lock_key(f"aw_async journal schema {schema}")
        self.version = f"SELECT max(version) FROM {s}.schema_version"
        self.has_version = "SELECT to_regclass($1) IS NOT NULL"
        self.version_table = f"{s}.schema_version"
        self.relations = (
            "SELECT count(*) FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
        )
        read = _READ.format(s=s)
        # $2, $3: arrays of api roots and booking ids.
        self.get_many = (
            f"SELECT {read} FROM {s}.attempts a"
            " JOIN unnest($2::text[], $3::bigint[]) AS k(api_root, booking_id)"
            " ON a.api_root = k.api_root AND a.booking_id = k.booking_id"
        )
        self.one_for_update = (
            f"SELECT {read} FROM {s}.attempts a WHERE a.api_root = $2 AND a.booking_id = $3 FOR UPDATE"
        )
        self.outstanding = (
            f"SELECT {read} FROM {s}.attempts a WHERE a.api_root = $2 AND a.state IN ('in_flight', 'unknown')"
            " AND (a.fingerprint = ANY($3::text[]) OR ($4 AND a.fingerprint IS NULL))"
        )
        self.entries = (
            f"SELECT {read} FROM {s}.attempts a WHERE $2::text IS NULL OR a.api_root = $2 ORDER BY 1, 2"
        )
        self.results_among = (
            f"SELECT new_booking_id, booking_id FROM {s}.results"
            " WHERE api_root = $1 AND new_booking_id = ANY($2)"
        )
        self.result_of = f"SELECT booking_id FROM {s}.results WHERE api_root = $1 AND new_booking_id = $2"
        self.forget_result = f"DELETE FROM {s}.results WHERE api_root = $1 AND new_booking_id = $2"
        self.server_offset = f"SELECT minutes FROM {s}.server_offsets WHERE api_root = $1"
        self.learn_server_offset = (
            f"INSERT INTO {s}.server_offsets (api_root, minutes, learned_at) VALUES ($1, $2, now())"
            " ON CONFLICT (api_root) DO UPDATE SET minutes = excluded.minutes,"
            " learned_at = excluded.learned_at"
        )
        self.learn_terms = (
            f"UPDATE {s}.attempts SET terms = $4, fingerprint = $5"
            " WHERE api_root = $1 AND booking_id = $2 AND attempt = $3"
        )
        self.holding = f"SELECT {s}.owner_alive($1)"
        # Verdicts and resolutions of one API root wait for each other: each reads the results it
        # must not contradict, then writes them.
        self.root_lock = "SELECT pg_advisory_xact_lock($1)"
        self.root_lock_prefix = f"aw_async journal results {schema} "
        # An outcome over the attempt $3 (kept as it began); $7 false drops unreadable terms.
        self.write_outcome = (
            f"UPDATE {s}.attempts SET state = $4, updated_at = now(), new_booking_id = $5, decided_by = $6,"
            " terms = CASE WHEN $7 THEN terms END, fingerprint = CASE WHEN $7 THEN fingerprint END"
            " WHERE api_root = $1 AND booking_id = $2 AND attempt = $3"
        )
        self.write_outcome_unattempted = (
            f"INSERT INTO {s}.attempts (api_root, booking_id, state, attempt, started_at, updated_at,"
            " settle_seconds, new_booking_id, decided_by) VALUES ($1, $2, $3, 0, now(), now(), 0, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING 1"
        )
        self.drop_result = (
            f"DELETE FROM {s}.results WHERE api_root = $1 AND new_booking_id = $2 AND booking_id = $3"
        )
        self.record_result = (
            f"INSERT INTO {s}.results (api_root, new_booking_id, booking_id, recorded_at)"
            " VALUES ($1, $2, $3, now())"
            " ON CONFLICT (api_root, new_booking_id) DO UPDATE SET booking_id = excluded.booking_id,"
            " recorded_at = excluded.recorded_at"
        )
        # _rules.may_renew: the owner's own attempt ($4), still in flight. The attempt starts again.
        self.renew = (
            f"UPDATE {s}.attempts a SET started_at = now(), updated_at = now(), server_started_at = $5"
            " WHERE a.api_root = $2 AND a.booking_id = $3 AND a.attempt = $4 AND a.state = 'in_flight'"
            f" AND a.owner = $1 RETURNING {read}"
        )
        self.forget = (
            f"WITH gone AS (DELETE FROM {s}.attempts"
            " WHERE (state = 'refused' AND updated_at < coalesce($1::timestamptz, now()) - $2::interval)"
            " OR (state = 'rescheduled' AND updated_at < coalesce($1::timestamptz, now()) - $3::interval)"
            " RETURNING api_root, booking_id, new_booking_id),"
            f" with_entry AS (DELETE FROM {s}.results r USING gone g WHERE r.api_root = g.api_root"
            " AND r.new_booking_id = g.new_booking_id AND r.booking_id = g.booking_id),"
            f" old AS (DELETE FROM {s}.results"
            " WHERE recorded_at < coalesce($1::timestamptz, now()) - $3::interval)"
            " SELECT count(*) FROM gone"
        )
        self.claim = _CLAIM.format(s=s, read=read, entry=_ENTRY.replace("a.", "c."))
        self.outcomes = _OUTCOMES.format(s=s)


# The claim of a run of keys (each once), in one statement. Inputs, one element per key: $2 api
# roots, $3 booking ids, $4 force, $5 settle windows, $6 the server's clock, $7 terms, $8 their
# fingerprints, $9 the attempt of that key this process runs (NULL for none); $1 the claimant's
# token and $10 its lock key, sorted by key (the order in which rows are locked, the same in every
# process). Nothing is claimed unless the claimant's own lock is held (holding).
#
# The WHERE is _rules.may_claim on the row as it is when its lock is taken: a refused row is
# free; an attempt in flight is taken over only when its owner is gone (the claimant's own: when
# it no longer runs it) and the claim is forced, since it is then unknown; rescheduled and unknown
# need force. The rows that were not claimed are read back as they were when the statement began:
# each of them refused the claim then, unless a concurrent write changed it (the caller asks again).
_CLAIM = """
WITH input AS MATERIALIZED (
    SELECT i.*, (SELECT {s}.owner_alive($10)) AS holding
    FROM unnest($2::text[], $3::bigint[], $4::bool[], $5::float8[], $6::timestamptz[], $7::text[],
                $8::text[], $9::bigint[])
        AS i(api_root, booking_id, force, settle, server_now, terms, fingerprint, running)
), claimed AS (
    INSERT INTO {s}.attempts AS a (api_root, booking_id, state, attempt, started_at, updated_at,
                                   settle_seconds, owner, owner_key, server_started_at, terms, fingerprint)
    SELECT api_root, booking_id, 'in_flight', 1, now(), now(), settle, $1, $10, server_now, terms, fingerprint
    FROM input WHERE holding
    ON CONFLICT (api_root, booking_id) DO UPDATE SET
        state = 'in_flight', attempt = a.attempt + 1, started_at = now(), updated_at = now(),
        settle_seconds = excluded.settle_seconds, owner = excluded.owner, owner_key = excluded.owner_key,
        server_started_at = excluded.server_started_at, terms = coalesce(excluded.terms, a.terms),
        fingerprint = coalesce(excluded.fingerprint, a.fingerprint), new_booking_id = NULL, decided_by = NULL
    WHERE (
        SELECT CASE a.state
            WHEN 'refused' THEN true
            WHEN 'in_flight' THEN i.force AND NOT CASE
                WHEN a.owner = $1 THEN a.attempt IS NOT DISTINCT FROM i.running
                WHEN a.owner_key IS NULL THEN false
                ELSE {s}.owner_alive(a.owner_key) END
            ELSE i.force END
        FROM input i WHERE i.api_root = excluded.api_root AND i.booking_id = excluded.booking_id)
    RETURNING a.*
)
SELECT true AS granted, {entry}, 0::float8 AS age, NULL::bool AS lock_alive, true AS holding,
       c.api_root AS key_root, c.booking_id AS key_id FROM claimed c
UNION ALL
SELECT false, {read}, i.holding, i.api_root, i.booking_id
FROM input i LEFT JOIN {s}.attempts a ON a.api_root = i.api_root AND a.booking_id = i.booking_id
WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE c.api_root = i.api_root AND c.booking_id = i.booking_id)
"""

# The outcomes of a run of attempts (each key once), in one statement: a compare-and-set on each
# attempt, still in flight and the writer's own ($1: _rules.may_record_outcome). The attempt's start
# stays; terms are kept when the outcome brings none. A new booking is recorded as the reschedule of
# its original (the latest word wins, as in the other stores). Gives the keys written.
_OUTCOMES = """
WITH input AS (
    SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[],
                         $8::text[])
        WITH ORDINALITY AS i(api_root, booking_id, attempt, state, new_booking_id, terms, fingerprint, ord)
), done AS (
    UPDATE {s}.attempts a SET state = i.state, updated_at = now(), new_booking_id = i.new_booking_id,
        decided_by = 'answer', terms = coalesce(i.terms, a.terms),
        fingerprint = coalesce(i.fingerprint, a.fingerprint)
    FROM input i
    WHERE a.api_root = i.api_root AND a.booking_id = i.booking_id AND a.attempt = i.attempt
      AND a.state = 'in_flight' AND a.owner = $1
    RETURNING a.api_root, a.booking_id, a.new_booking_id, i.ord
), recorded AS (
    INSERT INTO {s}.results (api_root, new_booking_id, booking_id, recorded_at)
    SELECT DISTINCT ON (api_root, new_booking_id) api_root, new_booking_id, booking_id, now()
    FROM done WHERE new_booking_id IS NOT NULL ORDER BY api_root, new_booking_id, ord DESC
    ON CONFLICT (api_root, new_booking_id) DO UPDATE SET booking_id = excluded.booking_id,
        recorded_at = excluded.recorded_at
)
SELECT api_root, booking_id FROM done
"""
