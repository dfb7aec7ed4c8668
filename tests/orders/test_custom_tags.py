"""customTags: generated ones unique within a process and across a fork; a caller's own held
to what the broker and the store can take (128 characters, no control character), on both
sides and in the simulator."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from orderkit import ACCOUNT, MNQ, SECRET_KEY

from harness.errors import InvalidInputError
from harness.orders.validation import new_custom_tag

TAG = re.compile(r"hx-[0-9a-f]{24}")


def test_tags_are_hx_and_24_hex_digits_and_never_repeat():
    tags = [new_custom_tag() for _ in range(20_000)]
    assert all(TAG.fullmatch(t) for t in tags)
    assert len(set(tags)) == len(tags)


def test_a_forked_child_never_repeats_its_parents_tags():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next tags to the parent and leave at once
        os.close(read)
        os.write(write, " ".join(new_custom_tag() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    mine = {new_custom_tag() for _ in range(100)}
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(theirs) == 100 and not (mine & theirs)
    assert {t[:15] for t in theirs}.isdisjoint({t[:15] for t in mine})  # a new random half


# ----- what a caller's tag may be: what the broker and the store can take ----------------------

LONGEST = "t" * 128  # the width of outcomes.custom_tag
NOT_TEXT_REASON = "must not hold control characters or lone surrogates"
NOT_TEXT = ["new\nline", "tab\there", "esc\x1b[31m", "nul\x00", "del\x7f", "c1\x85", "lone\ud800"]


def _tag_error(tag: str) -> str:
    """The one text both sides raise for a tag too long (its head, `...`, its length)."""
    reason = f"must be at most 128 characters, not {len(tag)}"
    return str(InvalidInputError("custom_tag", tag[:20] + "...", reason))


@pytest.mark.parametrize("length", [129, 1 << 20])
async def test_a_tag_too_long_is_refused_before_sending_naming_its_length(
    client, clean_sim, length
):
    tag = ("lone\ud800" if length > 1000 else "") + "x" * length  # a surrogate changes nothing
    tag = tag[:length]
    with pytest.raises(InvalidInputError) as info:
        await client.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=tag)
    err = info.value
    assert (err.field, err.reason) == (
        "custom_tag",
        f"must be at most 128 characters, not {length}",
    )
    assert str(err) == _tag_error(tag) and len(str(err)) < 120  # the tag is not repeated
    with pytest.raises(InvalidInputError) as info:
        await client.find_order_by_tag(ACCOUNT, tag)
    assert str(info.value) == _tag_error(tag)
    assert clean_sim.stats()["requests"].get("/api/Order/place", 0) == 0
    assert clean_sim.stats()["requests"].get("/api/Order/search", 0) == 0


@pytest.mark.parametrize("tag", NOT_TEXT)
async def test_a_tag_with_a_control_character_is_refused_before_sending(client, clean_sim, tag):
    with pytest.raises(InvalidInputError) as info:
        await client.place_order(ACCOUNT, MNQ, "sell", 1, custom_tag=tag)
    assert str(info.value) == str(InvalidInputError("custom_tag", tag, NOT_TEXT_REASON))
    with pytest.raises(InvalidInputError) as info:
        await client.find_order_by_tag(ACCOUNT, tag)
    assert info.value.reason == NOT_TEXT_REASON
    assert not any(p.startswith("/api/Order/") for p in clean_sim.stats()["requests"])


@pytest.mark.parametrize("tag", [LONGEST, "é" * 128, "\U0001f680" * 128, "a b\u00a0c\u2028d"])
async def test_a_tag_of_128_characters_of_any_script_is_placed_and_found(client, clean_sim, tag):
    placed = await client.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=tag)
    assert placed.custom_tag == tag
    assert [o["id"] for o in clean_sim.ledger() if o["customTag"] == tag] == [placed.order_id]
    found = await client.find_order_by_tag(ACCOUNT, tag)
    assert found is not None and found.id == placed.order_id


@pytest.mark.parametrize(
    ("tag", "why"),
    [("t" * 129, "must be at most 128 characters, not 129"), ("a\nb", NOT_TEXT_REASON)],
)
def test_the_simulated_broker_refuses_the_same_tags(clean_sim, tag, why):
    with httpx.Client(base_url=clean_sim.url, timeout=10) as http:
        login = {"userName": "sim-user", "apiKey": SECRET_KEY}
        token = http.post("/api/Auth/loginKey", json=login).json()["token"]
        body = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1}
        headers = {"Authorization": f"Bearer {token}"}
        refused = http.post("/api/Order/place", json={**body, "customTag": tag}, headers=headers)
        placed = http.post("/api/Order/place", json={**body, "customTag": LONGEST}, headers=headers)
    answer = refused.json()
    assert (answer["success"], answer["errorCode"], answer["orderId"]) == (False, 2, None)
    assert answer["errorMessage"] == f"Invalid custom tag: {why}."
    assert placed.json()["success"] is True
    assert [o["customTag"] for o in clean_sim.ledger()] == [LONGEST]
