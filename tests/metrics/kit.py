"""Helpers of the metrics suite: one scrape parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)] of an exposition (parsed, so it must parse)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((dict(sample.labels), float(sample.value)))
    return dict(out)


def scrape(collector: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    """One scrape of `collector`, through the exposition format and back."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return samples(generate_latest(registry).decode())


def by(rows: list[tuple[dict[str, str], float]], *keys: str) -> dict[tuple[str, ...], float]:
    """Values summed per the labels `keys`."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in rows:
        out[tuple(labels[k] for k in keys)] += value
    return dict(out)


def one(rows: list[tuple[dict[str, str], float]], **labels: str) -> float:
    """The value of the one sample with these labels."""
    found = [v for lab, v in rows if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (labels, rows)
    return found[0]
