"""The package's face: what it exports, that it is typed, and its command line."""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import attrs
import pytest

import aw_async
from aw_async import errors, models
from aw_async.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "public-api.md"


def documented_modules() -> dict[str, set[str]]:
    """docs/public-api.md, "Public modules": each public module and the names it exports."""
    table = DOCS.read_text().split("## Public modules", 1)[1].split("\n## ", 1)[0]
    modules = {}
    for row in re.findall(r"^\| `([\w.]+)` \| (.+) \|$", table, re.MULTILINE):
        modules[row[0]] = set(re.findall(r"`(\w+)`", row[1]))
    return modules


def test_every_public_module_exports_exactly_what_the_docs_list() -> None:
    # As httpx's tests/test_exported_members.py: equality, for every public module.
    documented = documented_modules()
    assert set(documented) == {
        "aw_async",
        "aw_async.errors",
        "aw_async.journal",
        "aw_async.codecs",
        "aw_async.models",
        "aw_async.sandbox",
        "aw_async.testing",
    }
    for name, names in documented.items():
        module = importlib.import_module(name)
        assert set(module.__all__) == names, f"{name}.__all__ differs from docs/public-api.md"
        for exported in module.__all__:
            getattr(module, exported)  # each one is there (lazily loaded ones included)


def test_a_module_defines_no_public_name_it_does_not_export() -> None:
    for name in documented_modules():
        module = importlib.import_module(name)
        defined_here = {
            attribute
            for attribute, value in vars(module).items()
            if not attribute.startswith("_")
            and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == name
        }
        assert defined_here <= set(module.__all__), f"{name} defines public names it does not export"


def test_the_contracts_public_names_are_importable() -> None:
    # docs/public-api.md, "Imports": users and acceptance tests import exactly these.
    from aw_async import (  # noqa: F401
        PRODUCTION_URL,
        SANDBOX_URL,
        AdultWorkClient,
        BookingStatus,
        CallMethod,
        Format,
        MadeBooking,
        PhoneChatBookingUser,
        RefreshingToken,
        RescheduleOutcome,
        StaticToken,
    )
    from aw_async.codecs import JsonCodec, XmlCodec, codec_for  # noqa: F401
    from aw_async.errors import (  # noqa: F401
        AdultWorkError,
        ApiError,
        AuthenticationError,
        DecodeError,
        InsufficientCreditsError,
        NotFoundError,
        OutcomeUnknownError,
        PermissionDeniedError,
        PreconditionError,
        RateLimitError,
        ServerError,
        SessionNotPassedError,
        TransportError,
    )
    from aw_async.models import ErrorBody  # noqa: F401


def test_the_package_is_typed() -> None:
    assert resources.files("aw_async").joinpath("py.typed").is_file()


def test_models_are_frozen_slotted_and_keyword_only() -> None:
    for model in (models.MadeBooking, models.PhoneChatBookingUser, models.ErrorBody):
        assert attrs.has(model)
        assert "__slots__" in vars(model)
        assert all(field.kw_only for field in attrs.fields(model))
    booking = models.ErrorBody(message="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        booking.message = "y"  # type: ignore[misc]


def test_error_bodies_hash_despite_their_model_state() -> None:
    with_state = models.ErrorBody(message="x", model_state={"a": ["b"]})
    assert hash(with_state) == hash(models.ErrorBody(message="x"))


def test_the_enums_members_are_the_wire_values_the_contract_names() -> None:
    # The values are the server's spellings (docs/api.md: Method 1, 2, 3); a value the server adds
    # later decodes to the plain str or int (tests/codecs/test_json_codec.py, test_xml_codec.py).
    assert {status.name: status.value for status in models.BookingStatus} == {
        "PENDING": "Pending",
        "ACCEPTED": "Accepted",
        "REJECTED": "Rejected",
        "CONFIRMED": "Confirmed",
        "CANCELLED": "Cancelled",
    }
    assert {method.name: method.value for method in models.CallMethod} == {
        "CALLED_BY_CANDIDATE": 1,
        "CLIENT_CALLS": 2,
        "SKYPE": 3,
    }
    # docs/public-api.md: a str enum and an IntEnum, so each compares equal to its wire value.
    assert issubclass(models.BookingStatus, str)
    assert models.BookingStatus.PENDING == "Pending"
    assert issubclass(models.CallMethod, enum.IntEnum)
    assert models.CallMethod.SKYPE == 3


def test_every_error_is_an_adultwork_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AdultWorkError)
    assert issubclass(errors.DecodeError, ValueError)


def test_the_errors_module_draws_its_tree_as_its_classes_are_and_defines_them_in_that_order() -> None:
    drawn: list[tuple[str, str | None]] = []  # (class, its parent in the drawing), top to bottom
    columns: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").split("::", 1)[1].split("\n\n")[1].splitlines():
        found = re.search(r"\b([A-Z]\w+Error)\b", line)
        if found is None:
            continue  # a description's second line
        while columns and columns[-1][0] >= found.start():
            columns.pop()
        drawn.append((found[1], columns[-1][1] if columns else None))
        columns.append((found.start(), found[1]))
    assert {name for name, _ in drawn} == set(errors.__all__)
    for name, parent in drawn:
        public_bases = [c.__name__ for c in getattr(errors, name).__mro__[1:] if c.__name__ in errors.__all__]
        assert (public_bases[0] if public_bases else None) == parent, name
    defined = [name for name in vars(errors) if name in errors.__all__]
    assert defined == [name for name, _ in drawn]


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"aw-async {aw_async.__version__}"


def test_the_installed_command_runs_the_readme_demo() -> None:
    # The README's first command ends with `.venv/bin/aw-async demo`: the console script pip installs
    # beside this interpreter, in a process of its own. (`python -m aw_async`: tests/cli/test_cli.py.)
    script = Path(sys.executable).parent / "aw-async"
    assert script.is_file(), f"{script}: the package is not installed (pip install -e '.[test]')"
    done = subprocess.run([str(script), "demo"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("Everything behaved as documented.")
