"""A throwaway PostgreSQL cluster on loopback for the tests (and the drills), never a running one.

`.ci/run` starts one with `python tests/pgcluster.py start DIR` and exports
`HARNESS_TEST_PG_URL`; a test session without that variable starts its own the same way and
stops it at the end. The recipe: `initdb` with trust auth on a fresh folder, `pg_ctl start`
listening on 127.0.0.1 only; as root, the server runs as the `postgres` user (it refuses root).
A cluster that cannot be started is an error, never a skip.

    python tests/pgcluster.py start DIR [PORT]   # prints the URL; DIR is created
    python tests/pgcluster.py stop DIR
    python tests/pgcluster.py restart DIR        # stop and start on the same port (drills)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
USER = "harness"


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (the log's tail is included)."""


def _bin(name: str) -> str:
    for folder in BIN_DIRS:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise ClusterError(
            f"PostgreSQL's {name} not found (looked in {', '.join(BIN_DIRS)} and PATH): "
            "install it with `apt-get install -y postgresql`"
        )
    return found


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in args)]


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], folder: Path, what: str) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        log = folder / "log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ClusterError(f"{what} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


def url(folder: Path) -> str:
    """The SQLAlchemy URL of the cluster in `folder`."""
    port = (folder / "port").read_text().strip()
    return f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres"


def start(folder: Path, port: int | None = None) -> str:
    """Create (first time) and start a cluster in `folder`; returns its URL."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres")
    data = folder / "data"
    if not data.exists():
        _run(
            [_bin("initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8"],
            folder,
            "initdb",
        )
    if port is None:
        port_file = folder / "port"
        port = int(port_file.read_text()) if port_file.exists() else _free_port()
    (folder / "port").write_text(str(port))
    options = f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c max_connections=200"
    _run(
        [
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        folder,
        "pg_ctl start",
    )
    _wait(port)
    return url(folder)


def _wait(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise ClusterError(f"PostgreSQL did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def stop(folder: Path) -> None:
    """Stop the cluster in `folder` (fast mode: connections are cut, as in an outage)."""
    data = folder.resolve() / "data"
    if data.exists():
        _run([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], folder, "pg_ctl stop")


def main(argv: list[str]) -> int:
    """Command line: start | stop | restart DIR [PORT]."""
    if len(argv) < 2 or argv[0] not in ("start", "stop", "restart"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[1])
    try:
        if argv[0] in ("stop", "restart"):
            stop(folder)
        if argv[0] in ("start", "restart"):
            print(start(folder, int(argv[2]) if len(argv) > 2 else None))
    except ClusterError as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
