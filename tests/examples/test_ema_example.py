"""The worked example (examples/ema, docs/example.md) builds, agrees with itself and with pandas,
and climbs the ladder from `off` to `production` with the same commands as the built-ins.

The crate is built for real (`maturin build --release` into this session's temp folder, a cold
build of about a minute on the 2-core CI machine) and its wheel unpacked onto `sys.path` and
the bot's `PYTHONPATH`; nothing is installed into the venv.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ema"

# The build dominates the first test; a hang still ends (the build has its own time-out).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's wheel, built and unpacked: the folder to put on the path."""
    work = tmp_path_factory.mktemp("ema-build")
    env = {**os.environ, "CARGO_TARGET_DIR": str(work / "target")}
    done = subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--release", "-q", "-o", str(work / "dist"),
         "-i", sys.executable, "-m", str(EXAMPLE / "Cargo.toml")],
        capture_output=True, text=True, env=env, timeout=840,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (work / "dist").glob("ema_rs-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


@pytest.fixture(scope="module")
def sides(built: Path) -> tuple[ModuleType, ModuleType, ModuleType]:
    """(ema_rs, ema_py, bot): the two implementations and the bot's module."""
    added = (str(built), str(EXAMPLE))
    sys.path[:0] = added
    try:
        import bot  # type: ignore[import-not-found]
        import ema_py  # type: ignore[import-not-found]
        import ema_rs  # type: ignore[import-not-found]
    finally:  # bot.py puts its folder on the path too
        sys.path[:] = [p for p in sys.path if p not in added]
    return ema_rs, ema_py, bot


def pandas_ema(prices: list[float], span: int) -> list[float]:
    import pandas as pd

    return list(pd.Series(prices, dtype="float64").ewm(span=span, adjust=False).mean())


finite = st.floats(allow_nan=False, allow_infinity=False)
prices_like = st.lists(
    st.one_of(finite, st.floats(-1e5, 1e5), st.integers(-(10**6), 10**6)), max_size=80
)
spans = st.one_of(st.integers(1, 400), st.integers(1, 2**53))
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(prices=prices_like, span=spans, as_tuple=st.booleans())
def test_rust_and_python_give_the_same_doubles(sides: Any, prices, span, as_tuple) -> None:
    ema_rs, ema_py, bot = sides
    given_prices = tuple(prices) if as_tuple else prices
    rust, python = ema_rs.ema(given_prices, span), ema_py.ema(given_prices, span)
    assert len(rust) == len(prices)
    assert all(type(x) is float for x in rust + python)
    # Equal double for double (inf == inf where a sum overflows): the declared comparison.
    assert bot.same_ema(python, rust) is None, bot.same_ema(python, rust)


@PROPERTY
@given(prices=st.lists(st.one_of(finite, st.floats(-1e5, 1e5)), max_size=80), span=spans)
def test_both_are_pandas_ewm_with_adjust_false(sides: Any, prices, span) -> None:
    ema_rs, _, _ = sides
    want = pandas_ema(prices, span)
    got = ema_rs.ema(prices, span)
    # pandas' C may fuse a multiply-add on some platforms (Rust and Python never do): a
    # relative 1e-12 there, exact on x86-64 (docs/example.md).
    assert all(
        math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-300) or g == w
        for g, w in zip(got, want, strict=True)
    ), (got, want)


def test_known_values(sides: Any) -> None:
    ema_rs, ema_py, _ = sides
    for ema in (ema_rs.ema, ema_py.ema):
        assert ema([], 3) == []
        assert ema([5.0], 10) == [5.0]
        assert ema([1, 2, 3], 1) == [1.0, 2.0, 3.0]  # span 1: alpha 1, the input itself
        assert ema([1.0, 2.0], 2) == [1.0, 1.6666666666666665]  # alpha 2/3
        assert ema((7.25,) * 5, 20) == [7.25] * 5  # a constant series stays exact


BAD_VALUES = [math.nan, math.inf, -math.inf, True, False, "1.5", None, 10**400, 1j, [1.0]]
BAD_SPANS = [0, -1, True, 2.0, "20", None, 2**53 + 1, 2**64, 10**30]


@PROPERTY
@given(
    prices=st.lists(st.floats(0, 1e5), max_size=20),
    where=st.integers(0, 20),
    bad=st.sampled_from(BAD_VALUES),
)
def test_a_bad_price_is_refused_by_both_naming_its_index(sides: Any, prices, where, bad) -> None:
    ema_rs, ema_py, _ = sides
    index = min(where, len(prices))
    prices.insert(index, bad)
    raised = [_raised(ema, prices, 5) for ema in (ema_rs.ema, ema_py.ema)]
    assert raised[0] == raised[1]
    message = f"invalid prices[{index}]={bad!r}: must be a finite number"
    assert raised[0] == ("InvalidInputError", message)


@pytest.mark.parametrize("span", BAD_SPANS, ids=repr)
def test_a_bad_span_is_refused_by_both(sides: Any, span: Any) -> None:
    ema_rs, ema_py, _ = sides
    raised = [_raised(ema, [1.0, 2.0], span) for ema in (ema_rs.ema, ema_py.ema)]
    assert raised[0] == raised[1]
    assert raised[0] == (
        "InvalidInputError", f"invalid span={span!r}: must be an integer from 1 to 2**53"
    )  # fmt: skip


@pytest.mark.parametrize("prices", [None, "123", {1.0: 2}, iter([1.0]), 3.0], ids=repr)
def test_prices_that_are_not_a_list_or_tuple_are_refused_by_both(sides: Any, prices: Any) -> None:
    ema_rs, ema_py, _ = sides
    raised = [_raised(ema, prices, 3) for ema in (ema_rs.ema, ema_py.ema)]
    assert raised[0] == raised[1]
    kind = type(prices).__name__
    assert raised[0] == (
        "InvalidInputError", f"invalid prices={kind!r}: must be a list or tuple of numbers"
    )  # fmt: skip


def _raised(ema: Callable[..., Any], prices: Any, span: Any) -> tuple[str, str]:
    with pytest.raises(InvalidInputError) as caught:
        ema(prices, span)
    return type(caught.value).__name__, str(caught.value)


def other_thread_ran_during(call: Callable[[], object]) -> bool:
    """Whether a thread waiting for the GIL ran while `call` ran (up to 200 times).

    With a switch interval longer than the test, the interpreter never hands the GIL to another
    thread on its own: the thread woken by `go` runs only if `call` gives the GIL back.
    """
    go, ran = threading.Event(), threading.Event()

    def woken() -> None:
        go.wait()
        ran.set()

    thread = threading.Thread(target=woken)
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e6)
    try:
        thread.start()  # returns once the thread waits on `go`, the GIL given back
        go.set()
        for _ in range(200):  # a state, not a time: at most 200 calls
            call()
            if ran.is_set():
                return True
        return False
    finally:
        sys.setswitchinterval(before)
        thread.join()


def test_a_long_input_is_computed_without_the_gil(sides: Any) -> None:
    ema_rs, _, _ = sides
    prices = [float(i % 97) for i in range(ema_rs.DETACH_FROM)]
    assert other_thread_ran_during(lambda: ema_rs.ema(prices, 10))


def test_a_short_input_keeps_the_gil(sides: Any) -> None:
    # Giving the GIL back on a 200-price call let the harness's shadow threads take it and cost
    # the caller up to a switch interval (lib.rs, DETACH_FROM): short calls keep it.
    ema_rs, _, _ = sides
    prices = [float(i % 97) for i in range(ema_rs.DETACH_FROM - 1)]
    assert not other_thread_ran_during(lambda: ema_rs.ema(prices, 10))
    assert not other_thread_ran_during(lambda: ema_rs.ema(prices[:200], 10))


def test_the_declared_comparison_names_the_first_difference(sides: Any) -> None:
    _, _, bot = sides
    assert bot.same_ema([1.0, 2.0], [1.0, 2.0]) is None
    assert bot.same_ema([1.0], [1.0, 2.0]) == "length differs: python 1 != rust 2"
    nudged = math.nextafter(2.0, 3.0)
    assert bot.same_ema([1.0, 2.0], [1.0, nudged]) == (
        f"ema differs at 1: python 2.0 != rust {nudged!r} (1 ulp)"
    )


# ----- the rollout: the bot and the same commands as the built-ins ----------------------------

LADDER = ["off", "shadow", "canary", "staging", "staging_50", "production"]
# Calls per stage: enough for ema_quick's 100 calls a side at canary's 5% (a key per bar spreads
# them: the keys are the same every run, so 157 reach Rust every time) and its 20 shadow
# comparisons at the shadow stage (about 130 of 3000 are compared: 4 in flight at most).
CALLS = 3000


def test_the_example_climbs_from_off_to_production_on_evidence(built: Path, tmp_path: Path):
    env = {
        **os.environ,
        "PYTHONPATH": str(built),
        "HARNESS_CONFIG_DIR": str(EXAMPLE / "conf"),  # gate=ema_quick: criteria for ema
    }
    env.pop("HARNESS_DB_URL", None)
    common = [f"db.url=sqlite:///{tmp_path / 'store.db'}", "gate=ema_quick"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
            timeout=300,
        )  # fmt: skip

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return run("-m", "harness", *args, *common)

    def stage() -> str:
        done = harness("status", "--migration", "indicators", "--json")
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)["stage"])

    for here, above in itertools.pairwise(LADDER):
        bot = run(str(EXAMPLE / "bot.py"), "--calls", str(CALLS), *common)
        assert bot.returncode == 0, bot.stderr
        assert bot.stdout.startswith(f"ema: stage {here}, {CALLS} calls"), bot.stdout
        gate = harness("gate", "--migration", "indicators")
        assert gate.returncode == 0, f"gate at {here}:\n{gate.stdout}{gate.stderr}"
        promote = harness("promote", "--migration", "indicators", "--from", here)
        assert promote.returncode == 0, f"promote from {here}:\n{promote.stdout}{promote.stderr}"
        assert stage() == above

    bot = run(str(EXAMPLE / "bot.py"), "--calls", str(CALLS), *common)
    assert bot.returncode == 0, bot.stderr
    assert f"{CALLS} served by rust, 0 fell back" in bot.stdout  # production: 100% Rust

    latency = harness("query", "latency", "--op", "ema", "--json")
    assert latency.returncode == 0, latency.stderr
    sides = {row["impl"]: row for row in json.loads(latency.stdout)}
    assert set(sides) == {"python", "rust"} and all(r["op"] == "ema" for r in sides.values())
    shadow = harness("query", "shadow", "--op", "ema", "--json", "--limit", "1000")
    assert shadow.returncode == 0, shadow.stderr
    comparisons = json.loads(shadow.stdout)
    assert comparisons and all(c["op"] == "ema" and c["matched"] for c in comparisons)
    assert {c["stage"] for c in comparisons} >= {"shadow", "canary", "staging"}
