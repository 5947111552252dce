"""Retained memory per decoded MadeBooking, with 10,000 distinct ones kept (tracemalloc).

    python -m benchmarks.memory

The documents differ in every string, number and datetime, so nothing is shared between bookings
that would not be shared in real use (enum members and small ints are). Target: at most
1.3 KiB per booking.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import MadeBooking

from .decode import FIXTURES

TARGET_BYTES = 1.3 * 1024


def distinct_documents(count: int, codec: JsonCodec | XmlCodec) -> list[bytes]:
    """``count`` realistic bookings that share no string, decimal or datetime."""
    seed = JsonCodec().decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    assert seed.candidate is not None
    assert seed.create_date is not None
    documents = []
    for n in range(count):
        shift = timedelta(minutes=n)
        booking = attrs.evolve(
            seed,
            booking_id=100_000 + n,
            credits=Decimal(f"{8 + n % 50}.{n % 100:02d}"),
            phone_number=f"44{7000000000 + n}",
            create_date=seed.create_date + shift,
            session_date=seed.create_date + shift + timedelta(days=1),
            accept_by=seed.create_date + shift + timedelta(hours=2),
            cancelled_date=seed.create_date + shift + timedelta(hours=3),
            last_updated=seed.create_date + shift + timedelta(seconds=7),
            cancelled_reason=f"Something came up, #{n}",
            cancelled_by=f"BookingUser{n}",
            comments=f"Hi, I had a great time last weekend (#{n}), I want to do it again tonight!",
            action_client=f"BookedUser{n} needs to accept or reject",
            candidate=attrs.evolve(seed.candidate, user_id=500_000 + n, nickname=f"BookedUser{n}"),
        )
        documents.append(codec.encode(booking))
    return documents


def retained_bytes_per_booking(count: int = 10_000, codec: JsonCodec | XmlCodec | None = None) -> float:
    codec = codec or JsonCodec()
    documents = distinct_documents(count, codec)
    codec.decode(documents[0], MadeBooking)  # warm: converters and caches are not per booking
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [codec.decode(document, MadeBooking) for document in documents]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(kept) == count
    return (after - before) / count


def measure(count: int = 10_000) -> dict[str, Any]:
    json_bytes = retained_bytes_per_booking(count, JsonCodec())
    xml_bytes = retained_bytes_per_booking(count, XmlCodec())
    return {
        "bookings_kept": count,
        "bytes_per_booking_json": round(json_bytes),
        "bytes_per_booking_xml": round(xml_bytes),
        "target_bytes": TARGET_BYTES,
        "met": max(json_bytes, xml_bytes) <= TARGET_BYTES,
    }


def main() -> int:
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
