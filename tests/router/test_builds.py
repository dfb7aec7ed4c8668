"""Evidence per build: each run records the native module's build, and the gate judges the
current build's evidence at the current stage (`gate.per_build`), saying what it left out."""

from __future__ import annotations

import re

import pytest

from harness.control import actions
from harness.native import BUILD_ID_TEST_ENV, build_id, load_native
from harness.store.db import open_store
from harness.store.queries import Filters, latest_build, runs

from .kit import ACCOUNT, MNQ


def test_the_build_id_names_the_crate_the_commit_and_the_extension_file(monkeypatch):
    monkeypatch.delenv(BUILD_ID_TEST_ENV, raising=False)
    status = load_native()
    assert status.available
    found = build_id(status)
    assert re.fullmatch(r"\d+\.\d+\.\d+\+([0-9a-f]{12}|nogit)\.[0-9a-f]{12}", found), found
    assert found.startswith(status.module.__version__ + "+")
    assert build_id(status) == found  # computed once


async def place(h, n: int, prefix: str) -> None:
    for i in range(n):
        await h.orders.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag=f"{prefix}-{i}")
    assert h.recorder.flush(10)


@pytest.mark.parametrize("per_build", [True, False])
async def test_two_builds_in_one_stage_the_gate_judges_only_the_second(
    store_url, open_harness, monkeypatch, per_build
):
    monkeypatch.setenv(BUILD_ID_TEST_ENV, "0.1.0+aaaaaaaaaaaa.111111111111")
    first = open_harness(url=store_url, stage="production")
    await place(first, 3, "first")
    await first.aclose()
    monkeypatch.setenv(BUILD_ID_TEST_ENV, "0.1.0+bbbbbbbbbbbb.222222222222")
    second = open_harness(url=store_url, stage="production", gate__per_build=per_build)
    await place(second, 2, "second")
    engine = open_store(store_url, read_only=True)
    try:
        assert latest_build(engine) == "0.1.0+bbbbbbbbbbbb.222222222222"
        verdict = actions.verdict(engine, second.config)
        shown = actions.status(engine, second.config)["build_id"]
        listed = runs(engine, Filters(build="0.1.0+aaaa"))
    finally:
        engine.dispose()
    assert [r["build_id"] for r in listed] == ["0.1.0+aaaaaaaaaaaa.111111111111"]
    assert shown == "0.1.0+bbbbbbbbbbbb.222222222222"  # harness status --json: the latest run
    judged = {c.criterion.value: c for c in verdict.criteria if str(c.op) == "place_order"}
    if per_build:
        assert verdict.build_id == "0.1.0+bbbbbbbbbbbb.222222222222"
        assert verdict.other_builds_calls == 3
        assert judged["min_samples"].figure == 2
    else:
        assert verdict.build_id is None and verdict.other_builds_calls == 0
        assert judged["min_samples"].figure == 5
    note = verdict.build_note()
    if per_build:
        assert note == (
            "evidence of build 0.1.0+bbbbbbbbbbbb.222222222222 only: a new build, its evidence "
            "starts afresh (3 calls of other builds left out)"
        )
    else:
        assert note is None
    data = verdict.to_dict()
    assert data["build_id"] == verdict.build_id
    assert data["other_builds_calls"] == verdict.other_builds_calls
