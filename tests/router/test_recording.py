"""What a routed call carries never stops the recording: a value the store's columns cannot hold
(an order id past 64 bits, a refused tag with a NUL byte or a terminal escape, or longer than
its column) is made to fit before the row is queued, on both sides (stage `off`: Python,
`production`: Rust) and on both databases; every call is one row, and closing works."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from harness.errors import InvalidInputError
from harness.store.models import Outcome

from .kit import ACCOUNT, MNQ, rows

pytestmark = pytest.mark.timeout(120)

SIDES = {"off": "python", "production": "rust"}


def _calls(h) -> int:
    return sum(c.calls for c in h.stats().calls.values())


@pytest.mark.parametrize("stage", list(SIDES))
async def test_a_refused_call_with_an_order_id_past_64_bits_stops_no_recording(
    store_url, open_harness, stage
):
    h = open_harness(url=store_url, stage=stage)
    with pytest.raises(InvalidInputError):
        await h.orders.cancel_order(ACCOUNT, 2**64)
    with pytest.raises(InvalidInputError):
        await h.orders.modify_order(ACCOUNT, -(2**63) - 1, size=1)
    for i in range(20):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy" if i % 2 else "sell", 1)
    assert h.wait_for_shadows(30)  # production samples 1% of the orders: their rows count too
    assert h.recorder.flush(30), h.recorder.stats()
    calls = _calls(h)
    shadows = h.stats().shadows
    compared = shadows.matched + shadows.mismatched
    stats = h.stats().recorder
    assert (calls, stats.written, stats.dropped) == (22, 22 + compared, 0)
    stored = rows(
        store_url,
        "SELECT op, served, ok, error_class, order_id, routing_key FROM outcomes "
        "WHERE ok = :no ORDER BY ts_ns",
        no=False,
    )
    assert [(r["op"], r["served"], r["error_class"], r["order_id"]) for r in stored] == [
        ("cancel_order", SIDES[stage], "InvalidInputError", None),
        ("modify_order", SIDES[stage], "InvalidInputError", None),
    ]  # the id no column can hold is NULL; the routing key keeps it as text
    assert [r["routing_key"] for r in stored] == [str(2**64), str(-(2**63) - 1)]
    run_id = h.run_id
    await h.aclose()  # never raises
    (run,) = rows(
        store_url, "SELECT status, rows_recorded, rows_dropped FROM runs WHERE id = :id", id=run_id
    )
    assert (run["status"], run["rows_recorded"], run["rows_dropped"]) == (
        "finished",
        22 + compared,
        0,
    )


@pytest.mark.parametrize("stage", list(SIDES))
async def test_tags_the_broker_would_refuse_are_refused_and_recorded_escaped_and_cut(
    store_url, open_harness, sim, stage
):
    # A customTag with a control character or past 128 characters is refused by both clients
    # before anything is sent; the refused call is still one row, its tag made to fit.
    h = open_harness(url=store_url, stage=stage)
    tags = ["nul-\x00-tag", "esc-\x1b[31m-tag", "long-" + "x" * 300]
    for tag in tags:
        with pytest.raises(InvalidInputError, match="custom_tag"):
            await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=tag)
    assert h.recorder.flush(30), h.recorder.stats()
    got = rows(
        store_url,
        "SELECT served, ok, error_class, custom_tag, routing_key FROM outcomes ORDER BY ts_ns",
    )
    columns = Outcome.__table__.c
    width, key_width = columns.custom_tag.type.length, columns.routing_key.type.length
    assert [(r["served"], r["ok"], r["error_class"]) for r in got] == [
        (SIDES[stage], False, "InvalidInputError")
    ] * 3
    assert [r["custom_tag"] for r in got] == [
        "nul-\\x00-tag",
        "esc-\\x1b[31m-tag",
        tags[2][:width],
    ]
    assert [r["routing_key"] for r in got] == [
        "nul-\\x00-tag",
        "esc-\\x1b[31m-tag",
        tags[2][:key_width],
    ]
    assert h.stats().recorder.dropped == 0
    assert sim.ledger() == []  # nothing reached the broker
    await h.aclose()


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


async def test_a_bots_close_that_lost_rows_says_so_at_error_and_in_its_stats(
    open_harness, sqlite_url, tmp_path, caplog
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("where the spill folder should be: nothing can be spilled")
    h = open_harness(
        url=sqlite_url, db__recorder__spill_dir=str(blocked), db__recorder__close_wait_s=0.5
    )
    await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1)
    assert h.recorder.flush(30)
    path = sqlite_url.removeprefix("sqlite:///")
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        for _ in range(3):
            await h.orders.place_market_order(ACCOUNT, MNQ, "sell", 1)
        with caplog.at_level(logging.ERROR, logger="harness"):
            await h.aclose()
    finally:
        locker.kill()
        locker.wait()
    stats = h.stats().recorder  # still there after closing
    assert (stats.enqueued, stats.written, stats.dropped, stats.in_spill) == (4, 1, 3, 0)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"run {h.run_id}: the recorder DROPPED 3 of 4 rows" in line for line in lines)
