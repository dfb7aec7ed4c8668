"""Prometheus metrics read from the store: one exporter covers every process on a database.

`StoreCollector` (a `prometheus_client` collector that reads the store on each scrape) and the
`harness metrics` command that serves it (`harness.metrics.cli`); the Grafana dashboard built on
these metrics is `docs/grafana/harness-dashboard.json`.
"""

from harness.metrics.collector import METRICS, StoreCollector

__all__ = ["METRICS", "StoreCollector"]
