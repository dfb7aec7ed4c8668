"""The `History/retrieveBars` path: bars aggregated from a contract's seeded price path, newest
first (`harness.sim.market` does the aggregation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness import projectx as px
from harness.sim.gateway.broker import Broker
from harness.sim.gateway.wire import fail, ok, req_bool, req_int, req_str, req_time
from harness.sim.market import aggregate, bucket_edges

_BAR_UNITS = frozenset(px.BarUnit)  # IntEnum members compare equal to the wire ints


class HistoryPaths(Broker):
    """`History/retrieveBars`."""

    def retrieve_bars(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`History/retrieveBars`: newest first, the most recent `limit` bars of the window."""
        contract_id = req_str(body, "contractId")
        start = req_time(body, "startTime")
        end = req_time(body, "endTime")
        unit = req_int(body, "unit")
        number = req_int(body, "unitNumber")
        limit = req_int(body, "limit")
        partial = bool(req_bool(body, "includePartialBar", required=False))
        req_bool(body, "live", required=False)
        code = px.BarsCode
        path = self.paths.get(contract_id)
        if path is None:
            return fail(code.CONTRACT_NOT_FOUND, f"Contract {contract_id} not found.", bars=None)
        if unit not in _BAR_UNITS:
            return fail(code.UNIT_INVALID, f"Invalid unit {unit}.", bars=None)
        if number < 1:
            return fail(code.UNIT_NUMBER_INVALID, f"Invalid unitNumber {number}.", bars=None)
        if limit < 1 or limit > px.MAX_BARS_LIMIT:
            return fail(code.LIMIT_INVALID, f"Invalid limit {limit}: 1..{px.MAX_BARS_LIMIT}.",
                        bars=None)  # fmt: skip
        start_s, end_s = math.ceil(start), math.ceil(end)
        try:
            edges = bucket_edges(px.BarUnit(unit), number, start_s, end_s, int(now), limit, partial)
            rows = aggregate(path, edges)
        except ValueError as exc:
            return fail(code.LIMIT_INVALID, f"Window too large for the simulator: {exc}.",
                        bars=None)  # fmt: skip
        c = path.contract
        label = np.asarray(edges[1:] if self.settings.bar_timestamp == "close" else edges[:-1])
        stamps = np.datetime_as_string(label.astype("datetime64[s]"), unit="s").tolist()
        prices = (rows[:, :4] * c.tick_num / c.tick_den).tolist()  # same rounding as c.price
        volumes = rows[:, 4].tolist()
        bars = [
            {"t": f"{t}+00:00", "o": p[0], "h": p[1], "l": p[2], "c": p[3], "v": v}
            for t, p, v in zip(stamps, prices, volumes, strict=True)
        ]
        bars.reverse()
        return {"bars": bars, **ok()}
