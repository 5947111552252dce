"""Hypothesis strategies for the models: every value the wire formats can carry."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

from aw_async._params import CreateBookingRequest
from aw_async.models import (
    BookingStatus,
    CallMethod,
    ErrorBody,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatBookingUser,
    PhoneChatMethod,
    UserBookingRequirements,
)


def _xml_char(c: str) -> bool:
    # XML 1.0 Char production, less the surrogates that str cannot encode to UTF-8 anyway.
    return c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c >= "\U00010000"


#: Any Unicode text XML 1.0 can carry (and therefore JSON too).
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)).filter(_xml_char), max_size=40)
optional_texts = st.none() | texts

int32 = st.integers(-(2**31), 2**31 - 1)

#: Decimals with their scale: 8, 8.5, 8.0000, 0.0001, negative ones too; never an exponent on the wire.
decimals = st.builds(
    lambda digits, scale: Decimal(digits).scaleb(-scale),
    st.integers(-(10**18), 10**18),
    st.integers(0, 8),
)

_offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
#: Each kind .NET sends: naive ("Unspecified"), UTC (`Z`), and a fixed offset (`+hh:mm`).
datetimes = st.datetimes() | st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=_offsets)
optional_datetimes = st.none() | datetimes

statuses = st.sampled_from(BookingStatus) | texts
methods = st.sampled_from(CallMethod) | int32

candidates = st.builds(
    PhoneChatBookingUser,
    user_id=int32,
    nickname=texts,
    phone_number=optional_texts,
    skype_name=optional_texts,
    total=int32,
    positive=int32,
    neutral=int32,
    negative=int32,
    ratings=int32,
    disputes=int32,
)

made_bookings = st.builds(
    MadeBooking,
    booking_id=int32,
    duration=int32,
    credits=decimals,
    status=statuses,
    method=methods,
    phone_number=optional_texts,
    skype_name=optional_texts,
    create_date=optional_datetimes,
    session_date=optional_datetimes,
    accept_by=optional_datetimes,
    accepted_date=optional_datetimes,
    confirmed_date=optional_datetimes,
    cancelled_date=optional_datetimes,
    cancelled_reason=optional_texts,
    cancelled_by=optional_texts,
    rejected_reason=optional_texts,
    last_updated=optional_datetimes,
    comments=optional_texts,
    action_client=optional_texts,
    candidate=st.none() | candidates,
)

_xml_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


def error_bodies(*, xml: bool) -> st.SearchStrategy[ErrorBody]:
    """Web API error bodies. In XML an empty element means null and several model-state messages
    are joined by spaces, so there text is non-empty and each key has one message."""
    text = texts.filter(bool) if xml else texts
    messages = st.lists(texts, min_size=1, max_size=1) if xml else st.lists(texts, max_size=3)
    return st.recursive(
        st.builds(
            ErrorBody,
            message=st.none() | text,
            message_detail=st.none() | text,
            exception_message=st.none() | text,
            exception_type=st.none() | text,
            stack_trace=st.none() | text,
            model_state=st.dictionaries(_xml_names, messages, max_size=3),
        ),
        lambda inner: st.builds(ErrorBody, message=text, inner=inner),
        max_leaves=3,
    )


# --- collections ------------------------------------------------------------------------------------

pages = st.builds(
    MadeBookingsPage,
    page_count=int32,
    page_number=int32,
    bookings_per_page=st.none() | int32,
    bookings=st.lists(made_bookings, max_size=3).map(tuple),
)
phone_chat_methods = st.builds(PhoneChatMethod, method=methods, description=optional_texts)
requirements = st.builds(
    UserBookingRequirements,
    phone_chat_ppm=st.none() | decimals,
    methods=st.lists(phone_chat_methods, max_size=3).map(tuple),
)
#: Every answer model (what the decoders' fast paths serve), with the strategy for its values.
answer_values: dict[type, st.SearchStrategy[object]] = {
    MadeBooking: made_bookings,
    MadeBookingsPage: pages,
    PhoneChatBookingUser: candidates,
    PhoneChatMethod: phone_chat_methods,
    UserBookingRequirements: requirements,
}
#: A value of any answer model, with its model.
any_answer = st.sampled_from(list(answer_values)).flatmap(
    lambda model: answer_values[model].map(lambda value: (value, model))
)
#: Request datetimes are sent to the minute, naive (server-local).
request_minutes = st.datetimes().map(lambda d: d.replace(second=0, microsecond=0))
create_requests = st.builds(
    CreateBookingRequest,
    book_user_id=int32,
    session_date=request_minutes,
    duration=int32,
    method=methods,
    phone_number=optional_texts,
    skype_name=optional_texts,
    credits=decimals,
    accept_by=request_minutes,
    comments=optional_texts,
)
