"""`harness alerts test [--json]`: one test event to every target of `alerts.urls`.

Prints each target (redacted: `harness.config.redact_target`) and what it answered (`HTTP 204`,
`sent`, or the error). Exit status: 0 every target answered 2xx (Apprise: sent), 1 any did not,
2 bad config (no `alerts.urls` among it). One attempt per target, at most `alerts.timeout_s`
each, all at once: a dead target makes the command wait that long, no longer.
"""

from __future__ import annotations

import argparse

from harness.alerts.event import TEST, Alert
from harness.config import HarnessConfig
from harness.errors import ConfigError
from harness.output import print_json, print_table

__all__ = ["Alerts"]


class Alerts:
    """`harness alerts test`."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness alerts`."""
        parser.add_argument("action", choices=("test",), help="test: send one test event")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Send the test event; 0 when every target took it, 1 otherwise."""
        from harness.alerts.sender import send_test
        from harness.store.db import url_secrets

        if not cfg.alerts.urls:
            raise ConfigError("alerts.urls", [], "no target to test: give alerts.urls=[URL,...]")
        alert = Alert(kind=TEST, who="harness alerts test", reason="a test of alerts.urls")
        secrets = [cfg.broker.api_key or "", *url_secrets(cfg.db.url)]
        answers = send_test(cfg.alerts, alert, secrets)
        if args.json:
            print_json(
                {
                    "event": alert.body(),
                    "targets": [
                        {"target": a.target, "ok": a.ok, "answer": a.answer} for a in answers
                    ],
                }
            )
        else:
            rows = [
                {"target": a.target, "result": "ok" if a.ok else "FAILED", "answer": a.answer}
                for a in answers
            ]
            print_table("test alert", ["target", "result", "answer"], rows)
        return 0 if all(a.ok for a in answers) else 1
