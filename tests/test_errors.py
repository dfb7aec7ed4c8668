"""The error taxonomy: what both implementations raise must carry its facts and survive pickling."""

from __future__ import annotations

import pickle

import pytest

from harness.errors import (
    BarDataError,
    BrokerError,
    BrokerUnavailableError,
    InvalidInputError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
)


def test_invalid_input_names_field_and_value() -> None:
    err = InvalidInputError("size", -3, "must be a positive integer")
    assert "size" in str(err) and "-3" in str(err)
    assert isinstance(err, ValueError)


def test_bar_data_error_names_index() -> None:
    err = BarDataError("t", 7, "timestamps must be strictly increasing")
    assert str(err) == "t: timestamps must be strictly increasing at index 7"
    assert err.index == 7 and isinstance(err, InvalidInputError)


@pytest.mark.parametrize(
    "err",
    [
        OrderRejectedError("rejected", endpoint="/api/Order/place", error_code=2, http_status=200),
        NotFoundError("gone", endpoint="/api/Order/cancel", error_code=2),
        BrokerUnavailableError(
            "503", endpoint="/api/Order/place", http_status=503, maybe_sent=True
        ),
        RateLimitedError("429", endpoint="/api/Order/place", http_status=429, retry_after=1.5),
        BarDataError("h", 3, "high below low", 1.0),
    ],
)
def test_errors_round_trip_through_pickle(err: Exception) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    if isinstance(err, BrokerError):
        assert isinstance(back, BrokerError)
        assert back._fields() == err._fields()


def test_not_found_is_a_rejection() -> None:
    assert issubclass(NotFoundError, OrderRejectedError)
