"""The workload's request budget and its seeded stop moves: pure logic, no broker."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from harness.run.pace import RequestBudget, interruptible_sleep
from harness.run.workload import stop_distances

pytestmark = pytest.mark.timeout(90)


async def test_the_budget_never_lets_more_than_its_limit_into_any_window():
    budget = RequestBudget(3, 0.2)
    starts = []

    async def caller() -> None:
        for _ in range(3):
            await budget.take()
            starts.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(caller(), caller(), caller())
    assert len(starts) == 9
    starts.sort()
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] >= 0.2 - 1e-3  # a 4th start waits for the 1st to age
    assert time.monotonic() - began >= 0.4 and budget.waited_s > 0


async def test_no_budget_never_waits_and_counting_fills_the_window():
    free = RequestBudget(None, 60.0)
    for _ in range(1000):
        await free.take()
    assert free.waited_s == 0
    budget = RequestBudget(2, 0.15)
    budget.count()
    budget.count()  # sent without waiting (the last resort) but counted
    began = time.monotonic()
    await budget.take()
    assert time.monotonic() - began >= 0.14


async def test_a_pause_ends_early_when_stopping():
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    # An hour's pause that ends at all within the minute ended on the stop (no timing judged).
    assert await asyncio.wait_for(interruptible_sleep(3600.0, stop), 60) is False
    assert await interruptible_sleep(0.01, asyncio.Event()) is True


@pytest.mark.parametrize(("stop_ticks", "modifies"), [(40, 2), (40, 50), (2, 5), (1, 3)])
def test_stop_moves_stay_on_the_losing_side_and_always_move(stop_ticks, modifies):
    for seed in range(20):
        distances = stop_distances(stop_ticks, modifies, random.Random(seed))
        assert distances[0] == stop_ticks and len(distances) == modifies + 1
        assert all(d >= 1 for d in distances)  # never at or through the price
        assert all(a != b for a, b in itertools.pairwise(distances))
        assert min(distances) >= min(stop_ticks, max(1, (stop_ticks + 1) // 2))
    once = stop_distances(stop_ticks, modifies, random.Random(3))
    assert once == stop_distances(stop_ticks, modifies, random.Random(3))  # seeded
