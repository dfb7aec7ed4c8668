"""Answers the real gateway should never send, read alike by both implementations.

The simulator always answers well-formed envelopes, so a tiny fixed-answer gateway stands in
here: `success` given as text, `errorCode` as text or a fraction, `errorMessage` as a number.
Whatever the reading, both sides must reach the same result and raise the same error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from orderkit import SECRET_KEY

from harness.errors import OrderRejectedError
from harness.orders import ClientSettings, open_client


class _FixedGateway(BaseHTTPRequestHandler):
    """Logs anyone in; answers `Account/search` with whatever `answer` holds."""

    answer: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/Auth/loginKey":
            body = {"success": True, "errorCode": 0, "errorMessage": None, "token": "opaque"}
        else:
            body = type(self).answer
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the suite's output is for failures."""


@pytest.fixture(scope="module")
def fixed_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FixedGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


ACCOUNT_ROW = {
    "id": 7,
    "name": "ODD-7",
    "balance": 1000.0,
    "canTrade": True,
    "isVisible": True,
    "simulated": True,
}

# (answer, expected error fields or None for success)
CASES = {
    "code as text": (
        {"success": True, "errorCode": "0", "errorMessage": None, "accounts": []},
        {"error_code": None, "error_message": None},
    ),
    "success as text": (
        {"success": "true", "errorCode": 0, "errorMessage": None, "accounts": []},
        {"error_code": 0, "error_message": None},
    ),
    "message as a number": (
        {"success": False, "errorCode": 3, "errorMessage": 12, "accounts": []},
        {"error_code": 3, "error_message": None},
    ),
    "zero code as a fraction": (
        {"success": True, "errorCode": 0.0, "errorMessage": None, "accounts": [ACCOUNT_ROW]},
        None,
    ),
    "false as the code": (
        {"success": True, "errorCode": False, "errorMessage": None, "accounts": [ACCOUNT_ROW]},
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_odd_envelope_reads_alike_on_both_sides(impl, fixed_gateway, case, clean_sim):
    answer, expected = CASES[case]
    _FixedGateway.answer = answer
    settings = ClientSettings(
        base_url=fixed_gateway, username="odd", api_key=SECRET_KEY, retry_delays_s=(0.01,)
    )
    async with open_client(settings, impl) as client:  # type: ignore[arg-type]
        if expected is None:
            [account] = await client.accounts()
            assert (account.id, account.name) == (7, "ODD-7")
            return
        with pytest.raises(OrderRejectedError) as caught:
            await client.accounts()
    err = caught.value
    assert type(err) is OrderRejectedError
    fields = {"error_code": err.error_code, "error_message": err.error_message}
    assert fields == expected
    assert (err.http_status, err.attempts, err.maybe_sent) == (200, 1, False)
    assert err.endpoint == "/api/Account/search"


async def test_a_null_list_reads_as_empty_on_both_sides(impl, fixed_gateway, clean_sim):
    _FixedGateway.answer = {"success": True, "errorCode": 0, "errorMessage": None, "accounts": None}
    settings = ClientSettings(
        base_url=fixed_gateway, username="odd", api_key=SECRET_KEY, retry_delays_s=(0.01,)
    )
    async with open_client(settings, impl) as client:  # type: ignore[arg-type]
        assert await client.accounts() == []
