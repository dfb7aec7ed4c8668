"""Drill 15, schema changes killed: the creation of the schema and its upgrade 0001 -> 0002
SIGKILLed at seeded random points, on SQLite and PostgreSQL; processes creating one new store
at once.

A point is each SQL statement the change sends, before and after it is sent, and each commit
(`store/schemakit.py`); a dry run counts them, and each try kills at one point drawn from its own
slice of that range (seeded), so the kills cover the change from its first statement to its
commit. Each try is a process forked from the drill (its modules already imported: a try costs
its work, not an interpreter's start) that runs what the command runs (`harness db upgrade`, or
the store opening of `harness run`) and SIGKILLs itself at its point: as abrupt as `kill -9`, and
at a known place. The old store for an upgrade is made by Alembic's upgrade to 0001 only, with a
run and an outcome written in it.

Must hold after every kill: the schema is as before (none; or 0001 with its rows) or complete,
never part of one; the next command (forked likewise; for the last try of three cases a real
process of its own) succeeds; the schema then equals a clean one, and the rows written at 0001 are
there. Processes started together on one new store (SQLite: three `harness run` openings and a
`harness db upgrade`; PostgreSQL: four `harness db upgrade`) all succeed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from store.schemakit import Points, act, fingerprint

from harness.store.db import SCHEMA_REVISION, open_engine, upgrade

pytestmark = [pytest.mark.drill, pytest.mark.timeout(600)]

SEED = int(os.environ.get("HARNESS_DRILL_SEED", "15"))
TRIES = int(os.environ.get("HARNESS_DRILL_SCHEMA_TRIES", "4"))
"""Kills per case (five cases): bounded for CI; more with HARNESS_DRILL_SCHEMA_TRIES."""
ROUNDS = 2
"""Rounds of processes creating one new store at once, per backend."""
KIT = Path(__file__).resolve().parent.parent / "store" / "schemakit.py"


@dataclass(frozen=True)
class Case:
    """What is killed: `backend`, the `phase` (`create` from nothing, `upgrade` from 0001), the
    action killed and the next command's action (`store.schemakit.act`); `real`: the next
    command of the last try is a real process of its own, not a fork."""

    backend: str
    phase: str
    killed: str
    following: str
    real: bool = False

    @property
    def name(self) -> str:
        by = "harness run" if self.killed == "open" else "harness db upgrade"
        what = "creation" if self.phase == "create" else "upgrade 0001 -> 0002"
        return f"{'SQLite' if self.backend == 'sqlite' else 'PostgreSQL'} {what} by {by}"


CASES = (
    Case("sqlite", "create", "open", "open", real=True),
    Case("sqlite", "create", "upgrade", "cli:db,upgrade"),
    Case("sqlite", "upgrade", "upgrade", "cli:db,upgrade", real=True),
    Case("postgresql", "create", "upgrade", "cli:db,upgrade"),
    Case("postgresql", "upgrade", "upgrade", "cli:db,upgrade", real=True),
)


# ----- processes -------------------------------------------------------------------------------


def fork(work: Callable[[], Any], log: Path, *, gate: int | None = None) -> int:
    """Run `work()` in a forked process, its output in `log`; its pid. With `gate` (a pipe's
    reading end) it first waits for a byte on it, so that several start at the same instant."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        # pytest's capture object is not these descriptors: write to them, line by line. Never
        # closed: the process ends with os._exit.
        sys.stdout = sys.stderr = open(out, "w", buffering=1)  # noqa: SIM115
        if gate is not None:
            os.read(gate, 1)
        result = work()
        code = result if isinstance(result, int) else 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap(pid: int) -> int:
    """The exit status of a forked process (-9: it died of SIGKILL)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def killed_at(point: int | None, action: str, url: str) -> Callable[[], Any]:
    def work() -> Any:
        points = Points(kill_at=point)
        points.install()
        result = act(action, url)
        print(f"POINTS {points.count}")
        return result

    return work


# ----- stores ----------------------------------------------------------------------------------


class Stores:
    """Fresh stores for the tries: an empty one, or one at 0001 holding a run and an outcome."""

    def __init__(self, folder: Path, pg_server: str) -> None:
        self.folder = folder
        self.pg = make_url(pg_server).set(drivername="postgresql+psycopg")
        self.made = 0
        self.sqlite_0001 = folder / "at-0001.db"
        self._seed(f"sqlite:///{self.sqlite_0001}")
        self._admin("DROP DATABASE IF EXISTS drill15_at_0001 WITH (FORCE)")
        self._admin("CREATE DATABASE drill15_at_0001")
        self._seed(self._pg("drill15_at_0001"))
        self.before = {"sqlite": fingerprint(self.fresh("sqlite", "upgrade"))}
        self.before["postgresql"] = fingerprint(self._pg("drill15_at_0001"))

    def _pg(self, database: str) -> str:
        return self.pg.set(database=database).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        engine = open_engine(self._pg("postgres"))
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    @staticmethod
    def _seed(url: str) -> None:
        engine = open_engine(url)
        try:
            upgrade(engine, "0001")  # Alembic to 0001 only: the store an older harness made
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO runs (id, started_ns, status, kind, host, pid, os_user, "
                        "version, native_available, config, rows_recorded, rows_dropped) VALUES "
                        "('r-0001', 1, 'finished', 'bot', 'h', 1, 'u', 'v', true, '{}', 1, 0)"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO outcomes (id, ts_ns, run_id, op, stage, routed, served, "
                        "fell_back, ok, latency_us) VALUES ('o-0001', 1, 'r-0001', "
                        "'place_order', 'off', 'python', 'python', false, true, 5.0)"
                    )
                )
        finally:
            engine.dispose()

    def fresh(self, backend: str, phase: str) -> str:
        """A new store for one try: empty (`create`) or at 0001 (`upgrade`)."""
        self.made += 1
        if backend == "sqlite":
            path = self.folder / f"try-{self.made}.db"
            if phase == "upgrade":
                path.write_bytes(self.sqlite_0001.read_bytes())
            return f"sqlite:///{path}"
        name = f"drill15_try_{self.made}"
        template = " TEMPLATE drill15_at_0001" if phase == "upgrade" else ""
        self._admin(f"CREATE DATABASE {name}{template}")
        return self._pg(name)

    def drop(self, url: str) -> None:
        """Remove a try's store."""
        if url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{url.removeprefix('sqlite:///')}{suffix}").unlink(missing_ok=True)
        else:
            self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

    def close(self) -> None:
        self._admin("DROP DATABASE IF EXISTS drill15_at_0001 WITH (FORCE)")


@pytest.fixture(autouse=True)
def imported() -> None:
    """What the forked processes run, imported and loaded once here: each try then costs its
    own work (the Alembic scripts read, Hydra's config tree composed once)."""
    import alembic.command
    import alembic.runtime.migration  # noqa: F401

    from harness.cli import main
    from harness.store.db import head_revision

    head_revision()  # the migration scripts parsed
    assert main(["db", "current", "--cfg", "job"]) == 0  # Hydra, the config, the db command


@pytest.fixture
def stores(tmp_path: Path, pg_server: str) -> Iterator[Stores]:
    made = Stores(tmp_path, pg_server)
    try:
        yield made
    finally:
        made.close()


def outcome_kept(url: str) -> bool:
    """The outcome written at 0001 is there, read at 0002 as not reconciled."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id, reconciled FROM outcomes")).all()
    except Exception:  # no such table or column: the upgrade did not complete
        return False
    finally:
        engine.dispose()
    return [(r[0], bool(r[1])) for r in found] == [("o-0001", False)]


# ----- the drill -------------------------------------------------------------------------------


@pytest.mark.drill_id(15, "schema changes killed")
def test_a_schema_change_killed_anywhere_is_finished_by_the_next_command(
    tmp_path: Path, stores: Stores, sqlite_template: Path, pg_template_url: str, figures
) -> None:
    clean = {
        "sqlite": fingerprint(f"sqlite:///{sqlite_template}"),
        "postgresql": fingerprint(pg_template_url),
    }
    rng = random.Random(SEED)
    after_kill: Counter[str] = Counter()
    problems: list[str] = []
    tries = next_ok = equal = kept = upgrades = 0
    for case in CASES:
        # The dry run: how many points this change has, end to end.
        dry = stores.fresh(case.backend, case.phase)
        log = tmp_path / "dry.log"
        assert reap(fork(killed_at(None, case.killed, dry), log)) == 0, log.read_text()[-3000:]
        total = int(log.read_text().split("POINTS ")[-1].split()[0])
        stores.drop(dry)
        figures.add(f"{case.name}: points in the change (dry run)", total)
        for i in range(TRIES):
            lo, hi = 1 + i * total // TRIES, max(1 + i * total // TRIES, (i + 1) * total // TRIES)
            point = rng.randint(lo, hi)
            url = stores.fresh(case.backend, case.phase)
            log = tmp_path / f"try-{stores.made}.log"
            status = reap(fork(killed_at(point, case.killed, url), log))
            tries += 1
            found = fingerprint(url)
            before = stores.before[case.backend] if case.phase == "upgrade" else None
            if status == 0:
                state = "finished before its point"
            elif found == clean[case.backend]:
                state = "complete"
            elif (before is None and not found["tables"]) or found == before:
                state = "as before"
            else:
                state = "half-made"
                problems.append(f"{case.name}, point {point}: half-made {sorted(found['tables'])}")
            after_kill[state] += 1
            if status not in (0, -9):
                problems.append(f"{case.name}, point {point}: exit {status}: {log.read_text()}")
            # The next command: forked, or for the last try of some cases a real process.
            if case.real and i == TRIES - 1:
                args = (
                    [str(KIT), case.following, url]
                    if case.following == "open"
                    else ["-m", "harness", "db", "upgrade", f"db.url={url}"]
                )
                done = subprocess.run(
                    [sys.executable, *args], capture_output=True, text=True, timeout=240
                )
                following, output = done.returncode, done.stdout + done.stderr
            else:
                following = reap(fork(killed_at(None, case.following, url), log))
                output = log.read_text()
            next_ok += following == 0
            if following != 0:
                problems.append(f"{case.name}, point {point}: next command {following}: {output}")
            equal += fingerprint(url) == clean[case.backend]
            if case.phase == "upgrade":
                upgrades += 1
                kept += outcome_kept(url)
            stores.drop(url)

    # Processes started at the same instant on one new store.
    together: Counter[str] = Counter()
    for backend in ("sqlite", "postgresql"):
        actions = ["open", "open", "open", "upgrade"] if backend == "sqlite" else ["upgrade"] * 4
        for _ in range(ROUNDS):
            url = stores.fresh(backend, "create")
            gate_read, gate_write = os.pipe()
            logs = [tmp_path / f"together-{stores.made}-{j}.log" for j in range(len(actions))]
            pids = [
                fork(killed_at(None, a, url), log, gate=gate_read)
                for a, log in zip(actions, logs, strict=True)
            ]
            os.write(gate_write, b"x" * len(pids))  # released together
            for pid, log in zip(pids, logs, strict=True):
                status = reap(pid)
                together["succeeded" if status == 0 else "failed"] += 1
                if status != 0:
                    problems.append(f"{backend} together: exit {status}: {log.read_text()}")
            os.close(gate_read)
            os.close(gate_write)
            together["schema equal to a clean one"] += fingerprint(url) == clean[backend]
            stores.drop(url)

    figures.add("kills: tries, seed, tries per case", (tries, SEED, TRIES))
    figures.add(
        "after the kill: as before / complete / half-made / finished first",
        (
            after_kill["as before"],
            after_kill["complete"],
            after_kill["half-made"],
            after_kill["finished before its point"],
        ),
    )
    figures.add("next command succeeded", f"{next_ok}/{tries}")
    figures.add("schema equal to a clean one after it", f"{equal}/{tries}")
    figures.add("rows written at 0001 kept through the upgrade", f"{kept}/{upgrades}")
    figures.add(
        f"4 processes on one new store at once, {ROUNDS} rounds a backend: succeeded / failed",
        (together["succeeded"], together["failed"]),
    )

    assert problems == [], "\n".join(problems)[-8000:]
    assert after_kill["half-made"] == 0
    assert next_ok == equal == tries and kept == upgrades
    assert together["failed"] == 0 and together["schema equal to a clean one"] == 2 * ROUNDS
    assert SCHEMA_REVISION == clean["sqlite"]["revision"] == clean["postgresql"]["revision"]
