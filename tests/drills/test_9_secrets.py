"""Drill 9, secrets: the broker's API key and the database password are known marker strings; a
full `harness run` against a `harness sim` process (with faults, so errors are recorded), on a
PostgreSQL role that logs in with that password (SCRAM, a cluster of the drill's own), then every
CLI command's output (tables, `--json`, `--csv`, `--cfg job`, errors of broken overrides and of
a wrong password), the logs (stderr), every file the commands left in the working folder (a
Hydra output folder, if any) and every row of every table are searched for the markers and for
session tokens (JWT): 0 hits. The dashboard's screens (overview, gate, each drill-down with its
full-row detail, the help) are rendered by the real app on the same store, with the API key and
the password in its config, and searched likewise.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select, text

from harness.config import compose
from harness.sim import FaultRule, SimSettings, Simulator
from harness.tui.app import make_app

from .kit import finish, harness, start

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

API_KEY = "APIKEY-marker-5b7e91c3"
PASSWORD = "PGPASS-marker-a04d66f2"
USER = "drill-secret-user"
ROLE = "drill_secret"
JWT = "eyJhbGciOi"  # every session token the simulator issues starts so (base64 of {"alg": ...)
MARKERS = (API_KEY, PASSWORD, JWT)


def _password_role(own_pg) -> str:
    """A role and a database of its own that log in with PASSWORD (SCRAM); its URL."""
    admin = create_engine(own_pg.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
            conn.execute(text(f"CREATE DATABASE secrets OWNER {ROLE}"))
        hba = own_pg.folder / "data" / "pg_hba.conf"
        rule = f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # first match wins: the password is required
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_reload_conf()"))
    finally:
        admin.dispose()
    return f"postgresql+psycopg://{ROLE}:{PASSWORD}@127.0.0.1:{own_pg.port}/secrets"


def _dump(url: str) -> tuple[str, int]:
    """Every row of every table, as text; and how many rows."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        parts, count = [], 0
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    parts.append(repr(tuple(row)))
                    count += 1
        return "\n".join(parts), count
    finally:
        engine.dispose()


async def _tui_screens(url: str) -> dict[str, str]:
    """Every screen of the dashboard on the store at `url`, as its SVG export, the config
    carrying the API key and the password (the URL's); each drill-down with a row selected so
    its detail (the full message) shows."""
    cfg = compose([f"db.url={url}", f"broker.api_key={API_KEY}"], environ={})
    app = make_app(cfg)
    screens: dict[str, str] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = asyncio.get_running_loop().time() + 30
        while app.refreshes < 1:
            assert asyncio.get_running_loop().time() < deadline, "the dashboard never refreshed"
            await pilot.pause(0.05)
        for key, name in [("1", "overview"), ("2", "gate"), ("3", "errors"), ("4", "fallbacks"),
                          ("5", "shadow"), ("6", "events"), ("7", "runs")]:  # fmt: skip
            await pilot.press(key)
            await pilot.pause(0.5)
            await pilot.press("down")  # a row selected: its detail shows
            await pilot.pause(0.2)
            screens[f"tui: {name}"] = app.export_screenshot()
        await pilot.press("1", "question_mark")
        await pilot.pause(0.3)
        screens["tui: help"] = app.export_screenshot()
    return screens


@pytest.mark.drill_id(9, "secrets")
def test_no_secret_reaches_any_output_log_file_or_row(tmp_path: Path, own_pg, figures) -> None:
    url = _password_role(own_pg)
    wrong = url.replace(PASSWORD, "wrong-" + PASSWORD[::-1])
    faults = [
        FaultRule(path="/api/Order/place", kind="error_after", probability=0.1),
        FaultRule(path="/api/Order/modify", kind="drop_after", probability=0.1),
        FaultRule(path="*", kind="expire_token", probability=0.03),
    ]
    sim = Simulator.spawn(
        SimSettings(
            username=USER, api_key=API_KEY, rate_limit=False, faults=faults, token_ttl_s=5.0, seed=3
        )
    )
    broker = ("broker=projectx", f"broker.base_url={sim.url}")
    env = {"PROJECTX_USERNAME": USER, "PROJECTX_API_KEY": API_KEY}
    outputs: dict[str, str] = {}

    def record(name: str, done) -> None:
        outputs[name] = f"{done.stdout}\n{done.stderr}"

    try:
        upgrade = harness(tmp_path, "db", "upgrade", f"db.url={url}", env=env)
        assert upgrade.returncode == 0, upgrade.stderr
        record("db upgrade", upgrade)
        run = start(
            tmp_path, "run", "--json", "workload.trades=8", "rollout.start_stage=staging_50",
            "broker.retry_delays_s=[0.05,0.1]", f"db.url={url}", *broker, env=env,
        )  # fmt: skip
        out, err = finish(run, timeout=150)
        assert run.returncode in (0, 1), err[-2000:]
        outputs["run --json"] = out + "\n" + err
        summary = json.loads(out)
        with_env = {**env, "HARNESS_DB_URL": url}
        commands = {
            "run (text, URL from HARNESS_DB_URL)": ("run", "workload.trades=3", *broker),
            "run --cfg job": ("run", "--cfg", "job", f"db.url={url}", *broker),
            "status --cfg job": ("status", "--cfg", "job"),
            "status": ("status",),
            "status --json": ("status", "--json"),
            "gate": ("gate",),
            "gate --json": ("gate", "--json"),
            "breaker": ("breaker",),
            "db current": ("db", "current"),
            "promote --force": ("promote", "--force", "--reason", "drill 9", "--json"),
            "rollback": ("rollback", "--reason", "drill 9"),
            "kill": ("kill", "--reason", "drill 9"),
            "unkill": ("unkill", "--reason", "drill 9", "--json"),
        }
        for kind in ("latency", "errors", "fallbacks", "shadow", "events", "runs"):
            commands[f"query {kind}"] = ("query", kind)
            commands[f"query {kind} --json"] = ("query", kind, "--json")
        commands["query errors --csv"] = ("query", "errors", "--csv")
        errors = {
            "wrong password": ("status", f"db.url={wrong}"),
            "server down": ("status", f"db.url={url.replace(str(own_pg.port), '1')}"),
            "broken db.url override": ("status", f"db.url={url}'"),
            "broken api_key override": ("status", f"broker.api_key={API_KEY}'"),
            "api_key interpolation": ("status", "broker.api_key=${" + API_KEY + "}"),
            "wrong API key": ("run", "workload.trades=1", f"db.url={url}", *broker),
        }
        jobs = [(name, args, with_env) for name, args in commands.items()]
        for name, args in errors.items():
            bad_env = {**env, "PROJECTX_API_KEY": API_KEY[::-1]} if "API key" in name else env
            jobs.append((name, args, bad_env))
        with ThreadPoolExecutor(max_workers=3) as pool:
            done_all = list(pool.map(lambda job: harness(tmp_path, *job[1], env=job[2]), jobs))
        for (name, _args, _env), done in zip(jobs, done_all, strict=True):
            if name in errors:
                assert done.returncode != 0, (name, done.stdout)
            else:  # a gate not passing is 1 or 3; a run sweeping what a fault left, 1
                allowed = (0, 1, 3) if name.startswith("gate") else (0, 1)
                assert done.returncode in allowed, (name, done.stderr[-2000:])
            record(name, done)
    finally:
        sim.stop()
    tui = asyncio.run(_tui_screens(url))

    files = {
        str(p.relative_to(tmp_path)): p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    rows_text, row_count = _dump(url)
    places = {f"output: {k}": v for k, v in outputs.items()}
    places |= {f"file: {k}": v for k, v in files.items()}
    places |= tui
    places["database rows"] = rows_text
    hits = {name: [m for m in MARKERS if m in body] for name, body in places.items()}
    hits = {name: found for name, found in hits.items() if found}

    figures.add("CLI outputs searched (commands, with stderr)", len(outputs))
    figures.add("bytes of output searched", sum(len(v) for v in outputs.values()))
    figures.add("files left in the working folder", sorted(files) or "none")
    figures.add("database rows dumped (every table)", row_count)
    figures.add("round trips completed (with faults and token expiries)",
                summary["round_trips"]["completed"])  # fmt: skip
    figures.add("hits of the API key / the DB password / a session token", hits or 0)
    figures.add("TUI screens rendered (SVG), bytes", f"{len(tui)}, {sum(map(len, tui.values()))}")

    assert row_count > 50 and summary["round_trips"]["completed"] > 0
    assert "staging_50" in tui["tui: overview"] or "production" in tui["tui: overview"]
    assert hits == {}, hits
