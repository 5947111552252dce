"""Where the command line gets its token, and how it keeps a refresh token that rotates.

In order:

1. ``--token`` or ``AW_ACCESS_TOKEN``: an access token, used as it is (a 401 is final).
2. ``AW_REFRESH_TOKEN`` with ``AW_CLIENT_ID`` and ``AW_CLIENT_SECRET`` (``AW_TOKEN_URL`` for another
   token endpoint), from the environment or from the credentials file in the state folder
   (:func:`credentials_path`; lines ``NAME=value``; it must be readable by its owner alone): a
   :class:`~aw_async.RefreshingToken`.

A refresh token is replaced by every refresh, and the old one stops working (docs/api.md, "Access
tokens"). So the new one is written to the credentials file, atomically (a new file in the same
folder, flushed to disk, renamed over the old one, the folder flushed) before the new access token is
used: a crash at any moment leaves on disk a refresh token that works. The file also notes which
token it descends from (a digest, never the token): a refresh token in the environment that the file
has already replaced is superseded by the file's; a different one (the user logged in again) wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .._oauth import TOKEN_URL, TokenSet
from .._tokens import RefreshingToken, StaticToken

__all__ = ["CredentialsError", "credentials_path", "state_folder", "token_from"]

_NAMES = ("AW_REFRESH_TOKEN", "AW_CLIENT_ID", "AW_CLIENT_SECRET", "AW_TOKEN_URL")
_ORIGIN = "AW_REFRESH_TOKEN_ORIGIN"


class CredentialsError(Exception):
    """No usable credentials, or a credentials file that must not be used (a usage error)."""


def state_folder() -> Path:
    """The user's state folder for aw-async (``$XDG_STATE_HOME/aw-async``, else
    ``~/.local/state/aw-async``): the default journal and the credentials file live there."""
    state = os.environ.get("XDG_STATE_HOME")
    return (Path(state).expanduser() if state else Path.home() / ".local" / "state") / "aw-async"


def credentials_path() -> Path:
    """The credentials file."""
    return state_folder() / "credentials"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_credentials(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of ``path`` (empty when there is no such file).

    Raises:
        CredentialsError: the file is readable or writable by others, or cannot be read.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"the credentials file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"the credentials file {path} is open to others (mode {stat.S_IMODE(mode):04o}): chmod 600 {path}"
        )
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"the credentials file {path} cannot be read: {exc}") from exc
    for line in text.splitlines():
        name, equals, value = line.strip().partition("=")
        if equals and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def write_credentials(path: Path, values: Mapping[str, str]) -> None:
    """Replace ``path`` with ``values``, atomically and durably, readable by its owner alone."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    # A file of that name a crash left behind is replaced, never reused: O_CREAT's mode applies only
    # to a file it creates, and the one left behind may be open to others.
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("".join(f"{name}={value}\n" for name, value in values.items()))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)


def token_from(
    access_token: str | None, environ: Mapping[str, str], path: Path | None = None
) -> StaticToken | RefreshingToken:
    """The token provider the command line uses (see the module's docstring).

    Raises:
        CredentialsError: nothing usable, or an unsafe credentials file.
    """
    if access_token:
        return StaticToken(access_token)
    path = path or credentials_path()
    stored = read_credentials(path)
    given = {name: environ[name] for name in _NAMES if environ.get(name)}
    refresh_token = given.get("AW_REFRESH_TOKEN")
    if refresh_token is None or stored.get(_ORIGIN) == _digest(refresh_token):
        refresh_token = stored.get("AW_REFRESH_TOKEN")  # the file's has replaced the one given
    client_id = given.get("AW_CLIENT_ID") or stored.get("AW_CLIENT_ID")
    client_secret = given.get("AW_CLIENT_SECRET") or stored.get("AW_CLIENT_SECRET")
    token_url = given.get("AW_TOKEN_URL") or stored.get("AW_TOKEN_URL") or TOKEN_URL
    if not (refresh_token and client_id and client_secret):
        raise CredentialsError(
            "an access token is needed: pass --token or set AW_ACCESS_TOKEN, or set AW_REFRESH_TOKEN, "
            f"AW_CLIENT_ID and AW_CLIENT_SECRET (in the environment or in {path})"
        )
    origin = (
        stored.get(_ORIGIN) if refresh_token == stored.get("AW_REFRESH_TOKEN") else _digest(refresh_token)
    )

    def write(tokens: TokenSet) -> None:
        kept = {name: value for name, value in read_credentials(path).items() if name in _NAMES}
        kept["AW_REFRESH_TOKEN"] = tokens.refresh_token
        kept[_ORIGIN] = origin or _digest(tokens.refresh_token)
        try:
            write_credentials(path, kept)
        except OSError as exc:
            raise CredentialsError(
                f"the credentials file {path} could not be written: {exc.strerror}"
            ) from None

    async def save(tokens: TokenSet) -> None:
        """Keep the rotated refresh token before the new access token is used (off the loop)."""
        await asyncio.to_thread(write, tokens)

    return RefreshingToken(client_id, client_secret, refresh_token, on_refresh=save, token_url=token_url)
