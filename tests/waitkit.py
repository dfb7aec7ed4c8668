"""Waiting in the suites: poll for a state with a generous deadline, never sleep a fixed time and
hope. CI is a shared 2-core machine whose load nobody controls: a state that comes late only
makes a test slower, never wrong, and one that never comes fails naming what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02
"""Between two looks at the state: short, so that a fast machine does not wait for nothing."""


def wait_until(condition: Callable[[], T], timeout: float = 60.0, what: str = "") -> T:
    """Poll `condition` until it returns something truthy (returned); AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or condition}: not within {timeout} s")
        time.sleep(POLL_S)


async def async_wait_until(condition: Callable[[], T], timeout: float = 60.0, what: str = "") -> T:
    """`wait_until` inside a coroutine: the event loop runs between two looks."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or condition}: not within {timeout} s")
        await asyncio.sleep(POLL_S)
