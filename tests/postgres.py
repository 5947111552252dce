"""A real PostgreSQL for the tests, started by the test suite itself.

The session fixture ``postgres_server`` runs ``initdb`` and ``pg_ctl`` into a temporary folder (in
/dev/shm where there is one): the cluster listens on a unix socket in that folder only
(``listen_addresses=''``), keeps PostgreSQL's durable settings (``fsync`` on), runs as the
``postgres`` system user through ``runuser`` when the tests run as root (PostgreSQL refuses root), and
is stopped and removed at the end of the session. The
function fixture ``postgres_dsn`` gives each test a database of its own on that server.

``AW_TEST_POSTGRES_DSN`` (a ``postgresql://`` URI; its user must be allowed to create databases)
points the tests at an existing server instead. When no PostgreSQL can be had the tests skip, saying
why, except under ``AW_REQUIRE_POSTGRES=1`` (which ``.ci/run`` sets): then they fail, saying why, so
that CI can never skip them silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

DSN_VARIABLE = "AW_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "AW_REQUIRE_POSTGRES"
SERVER_PROGRAMS = ("pg_ctl", "initdb", "postgres")
# Where PostgreSQL's programs live when they are not on PATH, after Debian's /usr/lib/postgresql/*/bin:
# PGDG packages for Red Hat, a source build's default prefix, Homebrew, Postgres.app.
OTHER_BINDIR_PATTERNS = (
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)
SYSTEM_USER = "postgres"  # who runs the server when the tests run as root
SUPERUSER = "postgres"  # the cluster's superuser, whoever runs the tests
PORT = 5432  # names the socket file only: the server listens on no TCP address
# A unix socket's path is limited to 107 bytes: under a longer $TMPDIR (macOS) the cluster goes in /tmp.
LONGEST_TEMPORARY_BASE = 60


class PostgresUnavailable(Exception):
    """No PostgreSQL can be had here; the message says why."""


def postgres_required() -> bool:
    """Whether a missing PostgreSQL fails the tests instead of skipping them (``AW_REQUIRE_POSTGRES``)."""
    return os.environ.get(REQUIRE_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test with the reason, or fail it when PostgreSQL is required."""
    if postgres_required():
        pytest.fail(f"PostgreSQL is required ({REQUIRE_VARIABLE}=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason}")


# --- finding the server programs --------------------------------------------------------------------


def _version_key(bindir: str) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` → (15,), ``9.6`` → (9, 6): the highest version sorts last."""
    name = Path(bindir).parent.name
    digits = "".join(c if c.isdigit() or c == "." else " " for c in name).split()
    return tuple(int(part) for part in digits[0].split(".") if part) if digits else ()


def _candidate_bindirs() -> Iterator[Path]:
    """Folders that may hold the server programs, in the order they are preferred."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Debian and others put symlinks on PATH; the real folder holds initdb and postgres beside it.
        yield Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            answer = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            )
            yield Path(answer.stdout.strip())
    for pattern in ("/usr/lib/postgresql/*/bin", *OTHER_BINDIR_PATTERNS):
        for found in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            yield Path(found)


def find_bindir() -> Path:
    """The folder holding ``pg_ctl``, ``initdb`` and ``postgres`` of one installation."""
    looked: list[str] = []
    for bindir in _candidate_bindirs():
        if all(os.access(bindir / program, os.X_OK) for program in SERVER_PROGRAMS):
            return bindir
        looked.append(str(bindir))
    where = ", ".join(dict.fromkeys(looked)) or "nothing on PATH, no pg_config, no known folder"
    raise PostgresUnavailable(
        f"no folder holds {', '.join(SERVER_PROGRAMS)} (looked at: {where}); "
        "install PostgreSQL (Debian: apt-get install postgresql) or set " + DSN_VARIABLE
    )


# --- talking to a server ----------------------------------------------------------------------------


def run_in_own_loop(work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work()`` to completion in an event loop on a thread of its own, so that neither the
    caller's running loop (an async test) nor the thread's current loop (pytest-asyncio's) is touched."""
    failure: list[BaseException] = []

    def target() -> None:
        async def main() -> None:
            await work()

        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="postgres-admin")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def execute(dsn: str, *statements: str) -> None:
    """Run SQL statements, one after the other, on a connection of their own."""
    import asyncpg

    async def work() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    run_in_own_loop(work)


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"dbname", "database"}]
    return urlunsplit(parts._replace(path="/" + quote(database), query=urlencode(query, safe="/")))


def redacted(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresServer:
    """A server the tests may use: databases of their own, and (for the throwaway cluster) a restart."""

    admin_dsn: str
    can_restart = False

    def __init__(self) -> None:
        self._created = 0
        # Unique across processes sharing an external server (two developers, pytest-xdist workers).
        self._prefix = f"aw_test_{os.getpid()}_{os.urandom(3).hex()}"

    def create_database(self) -> str:
        """A new, empty database; its DSN."""
        self._created += 1
        name = f"{self._prefix}_{self._created}"
        execute(self.admin_dsn, f'CREATE DATABASE "{name}"')
        return with_database(self.admin_dsn, name)

    def drop_database(self, dsn: str) -> None:
        """Drop a database ``create_database`` made, ending any session a test left open in it."""
        name = urlsplit(dsn).path.lstrip("/")
        if not name.startswith(self._prefix):
            raise ValueError(f"not a database these tests created: {name!r}")
        execute(self.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def ensure_running(self) -> None:
        """Start the server again if a test stopped it and did not start it."""

    # Only the throwaway cluster can be stopped and started; a test that needs it skips (or fails,
    # when PostgreSQL is required) on a server AW_TEST_POSTGRES_DSN names.

    def stop(self) -> None:
        """Stop the server: new connections are refused, open sessions end."""
        unavailable(f"the server {DSN_VARIABLE} names cannot be stopped by the tests")

    def start(self) -> None:
        """Start the server stopped by ``stop``; return once it accepts connections."""
        unavailable(f"the server {DSN_VARIABLE} names cannot be started by the tests")

    def restart(self) -> None:
        """Stop the server and start it again in place: same data, same socket, same DSNs. Every
        open session ends. It blocks: from an async test, ``await asyncio.to_thread(server.restart)``
        lets the test's own tasks run meanwhile."""
        unavailable(f"the server {DSN_VARIABLE} names cannot be restarted by the tests")


class ExternalPostgres(PostgresServer):
    """A server that ``AW_TEST_POSTGRES_DSN`` names: used, never stopped."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        if urlsplit(dsn).scheme not in {"postgres", "postgresql"}:
            raise PostgresUnavailable(f"{DSN_VARIABLE} is not a postgresql:// URI")
        self.admin_dsn = dsn
        try:
            execute(dsn, "SELECT 1")
        except Exception as exc:
            raise PostgresUnavailable(
                f"cannot connect to {DSN_VARIABLE}={redacted(dsn)}: {type(exc).__name__}: {exc}"
            ) from exc


def _reachable_by_all(folder: str) -> bool:
    """Whether every user may walk down to ``folder`` (a $TMPDIR under /root is not): the cluster's
    folder in it is handed to the ``postgres`` user, who must reach it."""
    path = Path(folder).resolve()
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


class ThrowawayPostgres(PostgresServer):
    """A cluster of its own in a temporary folder: data in ``data/``, the socket in the folder itself."""

    can_restart = True

    def __init__(self, bindir: Path, base: str | None = None) -> None:
        super().__init__()
        self.bindir = bindir
        self.run_as: pwd.struct_passwd | None = None
        self._runuser: str | None = None
        if os.geteuid() == 0:
            self._runuser = shutil.which("runuser") or next(
                (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
            )
            if self._runuser is None:
                raise PostgresUnavailable(
                    "the tests run as root, and there is no runuser to drop to postgres"
                )
            try:
                self.run_as = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"the tests run as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
                ) from None
        base = base or tempfile.gettempdir()
        if len(base) > LONGEST_TEMPORARY_BASE or not (self.run_as is None or _reachable_by_all(base)):
            base = "/tmp"
        self.folder = Path(tempfile.mkdtemp(prefix="aw-pg-", dir=base))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.admin_dsn = f"postgresql://{SUPERUSER}@/postgres?host={quote(str(self.folder))}&port={PORT}"
        self.running = False

    def _run(self, *command: str) -> None:
        """Run a server program as the user who owns the cluster; its output becomes the error."""
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.run_as is not None and self._runuser is not None:
            argv = [self._runuser, "-u", self.run_as.pw_name, "--", *argv]
        # PG* variables (PGDATA, PGPORT, PGOPTIONS...) would change what the programs do.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run(
            argv, cwd=self.folder, env=environment, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            program = " ".join(command[:2]) if command[0] == "pg_ctl" else command[0]
            raise PostgresUnavailable(f"{program} failed (exit {done.returncode}): {output}")

    def create_cluster(self) -> None:
        if self.run_as is not None:
            os.chown(self.folder, self.run_as.pw_uid, self.run_as.pw_gid)
        try:
            self._run(
                "initdb", "--pgdata", str(self.data), "--auth=trust", f"--username={SUPERUSER}",
                "--encoding=UTF8", "--no-locale", "--no-instructions",
            )  # fmt: skip
        except PostgresUnavailable as exc:
            hint = (
                f" (the {SYSTEM_USER!r} user must reach {self.folder}: try TMPDIR=/tmp)"
                if self.run_as
                else ""
            )
            raise PostgresUnavailable(f"{exc}{hint}") from None
        settings = (
            "\n# aw_async tests: a unix socket in the folder, no TCP; durable settings, as in production\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.folder}'\n"
            f"port = {PORT}\n"
            "fsync = on\n"
            "synchronous_commit = on\n"
            "full_page_writes = on\n"
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(settings)

    def start(self) -> None:
        """Start the server; return once it accepts connections."""
        try:
            self._run(
                "pg_ctl", "start", "--wait", "--silent", "--pgdata", str(self.data), "--log", str(self.log)
            )
        except PostgresUnavailable as exc:
            raise PostgresUnavailable(f"{exc}\n{self.log_tail()}") from None
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, end sessions; ``immediate``: like a
        crash, recovered from the WAL at the next start)."""
        self._run("pg_ctl", "stop", "--wait", "--silent", "--pgdata", str(self.data), "--mode", mode)
        self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def destroy(self) -> None:
        """Stop the server if it runs, and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except PostgresUnavailable:
                with contextlib.suppress(PostgresUnavailable):
                    self.stop(mode="immediate")
        if self.run_as is not None:
            # Give the files back, so that removing them needs no privilege a root without
            # CAP_DAC_OVERRIDE (some containers) lacks.
            for root, dirs, files in os.walk(self.folder):
                for name in (*dirs, *files):
                    with contextlib.suppress(OSError):
                        os.lchown(os.path.join(root, name), os.getuid(), os.getgid())
            with contextlib.suppress(OSError):
                os.chown(self.folder, os.getuid(), os.getgid())
        shutil.rmtree(self.folder, ignore_errors=True)


def start_throwaway(base: str | None = None) -> ThrowawayPostgres:
    """A new cluster, running, in a folder under ``base`` ($TMPDIR's by default); removed again if it
    cannot be started."""
    server = ThrowawayPostgres(find_bindir(), base)
    try:
        server.create_cluster()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


# --- fixtures (registered in tests/conftest.py) -----------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL of this test session: ``AW_TEST_POSTGRES_DSN``'s, or a throwaway cluster."""
    try:
        import asyncpg  # noqa: F401  (checked here so that its absence is a reason, not an error)
    except ImportError:
        unavailable("asyncpg is not installed (pip install -e '.[test]')")
    external = os.environ.get(DSN_VARIABLE, "").strip()
    try:
        # On a memory file system where there is one: fsync and CREATE DATABASE (one per test) cost
        # nothing there, and the tests are about the server, not the disk; a server they crash or
        # restart loses nothing there that it would keep on a disk. (The benchmarks keep the disk.)
        memory = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
        server = ExternalPostgres(external) if external else start_throwaway(memory)
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        if isinstance(server, ThrowawayPostgres):
            server.destroy()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A DSN (asyncpg's ``postgresql://`` form) for a new, empty database of this test's own."""
    postgres_server.ensure_running()
    dsn = postgres_server.create_database()
    yield dsn
    postgres_server.ensure_running()
    postgres_server.drop_database(dsn)
