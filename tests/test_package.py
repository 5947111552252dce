"""The package's face: what it exports, that it is typed, and its command line."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import resources

import attrs
import pytest

import aw_async
from aw_async import codecs, errors, models
from aw_async.cli import main


def public_names(module: object) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_") and name != "annotations"}


def test_all_lists_what_each_public_module_defines() -> None:
    for module in (aw_async, models, errors, codecs):
        exported = set(module.__all__)
        assert exported <= set(vars(module)), f"{module.__name__}.__all__ names something missing"
        defined_here = {
            name
            for name in public_names(module)
            if (inspect.isclass(value := getattr(module, name)) or inspect.isfunction(value))
            and value.__module__.startswith(module.__name__)
        }
        assert defined_here <= exported, f"{module.__name__} defines public names it does not export"


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


def test_enums() -> None:
    assert models.BookingStatus("Cancelled") is models.BookingStatus.CANCELLED
    assert models.BookingStatus.PENDING == "Pending"
    assert models.CallMethod(3) is models.CallMethod.SKYPE
    assert [m.value for m in models.CallMethod] == [1, 2, 3]


def test_every_error_is_an_adultwork_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AdultWorkError)
    assert issubclass(errors.DecodeError, ValueError)


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"aw-async {aw_async.__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aw_async", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"aw-async {aw_async.__version__}"
