"""The sender: one background thread per target, a bounded queue, retries, a bounded flush.

A target is an `http(s)://` webhook (one JSON POST of `Alert.body()`, with httpx) or any other
scheme, sent through Apprise (imported on the first send, never at start-up). Each target has
its own thread and queue, so a dead endpoint holds up nothing but its own alerts:

- `submit` appends to the queue (at most `alerts.max_pending`; beyond, the alert is dropped and
  counted) and wakes the thread: the caller never waits on the network;
- an attempt waits at most `alerts.timeout_s`; a failure that may pass (no connection, a
  time-out, HTTP 408, 429 or 5xx) is tried again after 0.5 s, 1 s, 2 s, ... (at most 30 s)
  until `alerts.deadline_s` after the event, then counted as failed; any other answer
  (a 4xx: the target refuses it) fails at once;
- `close` gives the threads at most `alerts.flush_s` to send what is pending (attempts and
  back-offs are cut to that deadline), then leaves them (daemon threads) and counts what was
  not sent as dropped, with one warning. A command with a dead endpoint thus ends at most
  `flush_s` later.

Every text of an alert is scrubbed before it leaves: the process's secrets (the broker's API
key, the database password, the targets themselves) become `***`, and so does the password of
any URL in it. Targets are only ever shown redacted (`harness.config.redact_target`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from harness.alerts.event import TEST, Alert
from harness.config import AlertsConfig, redact_target
from harness.redact import Scrubber

__all__ = ["AlertStats", "Alerter", "TargetAnswer"]

log = logging.getLogger("harness.alerts")

FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class AlertStats:
    """An alerter's figures since it opened, summed over its targets: alerts `sent` (2xx, or
    Apprise said yes), `failed` (refused, or still failing at their deadline), `dropped` (the
    queue full, or not sent before `flush_s` at close), `retries` (attempts after a first),
    `pending` (waiting now)."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class TargetAnswer:
    """What one target answered one alert: `target` redacted, `ok` (2xx / Apprise's yes),
    `answer` (`HTTP 204`, `sent`, or the error, scrubbed)."""

    target: str
    ok: bool
    answer: str


class _Failure(Exception):
    def __init__(self, text: str, *, retryable: bool) -> None:
        super().__init__(text)
        self.retryable = retryable


class AlertScrubber(Scrubber):
    """The one scrubbing rule (`harness.redact.Scrubber`), applied to every text of an alert."""

    def alert(self, alert: Alert) -> Alert:
        """`alert` with every text scrubbed (the gate's figures are numbers and names)."""

        def clean(text: str | None) -> str | None:
            return None if text is None else self(text)

        gate = None if alert.gate is None else json.loads(self(json.dumps(alert.gate, default=str)))
        return replace(
            alert,
            reason=clean(alert.reason),
            who=clean(alert.who),
            from_stage=clean(alert.from_stage),
            to_stage=clean(alert.to_stage),
            op=clean(alert.op),
            migration=clean(alert.migration),
            gate=gate,
        )


def target_secrets(url: str) -> list[str]:
    """The parts of a target URL that may be a token: everything after the scheme, the path,
    the user part (each is replaced by `***` wherever an error text repeats it)."""
    _scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    parts = [rest, rest[len(authority) :].lstrip("/")]
    if "@" in authority:
        parts.append(authority[: authority.rfind("@")])
    if not url.lower().startswith(("http://", "https://")):
        parts += [p for p in re.split(r"[/?&=#@:]", rest) if len(p) >= 8]
    return [p for p in parts if p]


def is_webhook(url: str) -> bool:
    """Whether `url` is a plain webhook (JSON POST with httpx) rather than an Apprise URL."""
    return url.lower().startswith(("http://", "https://"))


def send_once(
    url: str, alert: Alert, timeout_s: float, scrub: AlertScrubber, client: Any = None
) -> str:
    """One attempt to deliver `alert` to `url` (a webhook through `client`, an
    `httpx.Client`, when given); the answer (`HTTP 204`, `sent`), or `_Failure` (scrubbed
    text, and whether another attempt may succeed)."""
    if is_webhook(url):
        return _post(url, alert, timeout_s, scrub, client)
    return _apprise(url, alert, timeout_s, scrub)


def _post(url: str, alert: Alert, timeout_s: float, scrub: AlertScrubber, client: Any) -> str:
    import httpx

    try:
        if client is None:
            with httpx.Client(follow_redirects=False) as own:
                response = own.post(url, json=alert.body(), timeout=timeout_s)
        else:
            response = client.post(url, json=alert.body(), timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise _Failure(scrub(f"{type(exc).__name__}: {exc}"), retryable=True) from None
    answer = f"HTTP {response.status_code}"
    if 200 <= response.status_code < 300:
        return answer
    retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
    raise _Failure(answer, retryable=retryable)


def _apprise(url: str, alert: Alert, timeout_s: float, scrub: AlertScrubber) -> str:
    try:
        import apprise

        # Our own warning names the target redacted and the failure; Apprise's own log lines
        # may name a service's host or account, and would say it a second time.
        logging.getLogger("apprise").setLevel(logging.ERROR)
    except ImportError:
        raise _Failure("the apprise package is not installed", retryable=False) from None
    # Apprise's plugins take their time-outs from the URL (`cto`, `rto`: connect and read).
    separator = "&" if "?" in url else "?"
    timed = f"{url}{separator}cto={timeout_s:g}&rto={timeout_s:g}"
    notifier = apprise.Apprise()
    if not notifier.add(timed) and not notifier.add(url):
        raise _Failure("Apprise does not support this URL", retryable=False)
    try:
        ok = notifier.notify(title=alert.title(), body=alert.text())
    except Exception as exc:  # a plugin's own bug: tell, try again later
        raise _Failure(scrub(f"{type(exc).__name__}: {exc}"), retryable=True) from None
    if not ok:
        raise _Failure(
            "Apprise: not sent (the service refused it or was unreachable)", retryable=True
        )
    return "sent"


class _Target:
    """One target's queue and thread."""

    def __init__(self, url: str, config: AlertsConfig, scrub: AlertScrubber) -> None:
        self.url = url
        self.shown = redact_target(url)
        self._config = config
        self._scrub = scrub
        self._queue: deque[tuple[Alert, float]] = deque()
        self._cond = threading.Condition()
        self._closing_at: float | None = None  # monotonic flush deadline once closing
        self.sent = self.failed = self.dropped = self.retries = 0
        self._busy = False
        self._abandoned = False  # close() gave up on the thread: it counts nothing more
        self._warned = False
        self._client: Any = None  # the webhook's httpx.Client, made by the thread
        self._thread = threading.Thread(
            target=self._run, name=f"harness-alerts {self.shown}", daemon=True
        )
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        with self._cond:
            if self._closing_at is not None or len(self._queue) >= self._config.max_pending:
                self.dropped += 1
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "alerts: %s: %d alerts pending (alerts.max_pending): dropping, counted",
                        self.shown,
                        len(self._queue),
                    )
                return
            self._queue.append((alert, time.monotonic()))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy and not self._abandoned else 0)

    def close(self, flush_s: float) -> None:
        with self._cond:
            self._closing_at = time.monotonic() + flush_s
            self._cond.notify_all()

    def join(self, deadline: float) -> int:
        """Wait for the thread until `deadline` (monotonic); the alerts left unsent."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = len(self._queue) + (1 if self._busy else 0)
            self._queue.clear()
            self.dropped += left
            self._abandoned = True
            self._cond.notify_all()
        return left

    def _run(self) -> None:
        if is_webhook(self.url):
            import httpx  # on this thread: the caller never pays for it

            self._client = httpx.Client(
                follow_redirects=False, headers={"User-Agent": "harness-alerts"}
            )
        while True:
            with self._cond:
                while not self._queue and self._closing_at is None:
                    self._cond.wait()
                if not self._queue:
                    return
                alert, queued = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(alert, queued)
            except Exception:  # the sender must never die
                log.exception("alerts: %s: sending failed", self.shown)
            with self._cond:
                self._busy = False

    def _deliver(self, alert: Alert, queued: float) -> None:
        delay = FIRST_BACKOFF_S
        attempt = 0
        while True:
            with self._cond:
                closing_at = self._closing_at
            deadline = queued + self._config.deadline_s
            if closing_at is not None:
                deadline = min(deadline, closing_at)
            left = deadline - time.monotonic()
            if attempt and left <= 0:
                self._settle("failed")
                return
            attempt += 1
            # The first attempt always gets its full time-out (deadline_s 0: one attempt).
            timeout = self._config.timeout_s if attempt == 1 else min(self._config.timeout_s, left)
            if closing_at is not None:
                timeout = min(timeout, max(0.05, closing_at - time.monotonic()))
            try:
                send_once(self.url, alert, timeout, self._scrub, self._client)
            except _Failure as exc:
                if not exc.retryable:
                    log.warning("alerts: %s refused %s: %s", self.shown, alert.kind, exc)
                    self._settle("failed")
                    return
                if attempt == 1 and not self._abandoned:
                    log.warning(
                        "alerts: %s: %s not sent (%s); trying again for up to %g s",
                        self.shown,
                        alert.kind,
                        exc,
                        self._config.deadline_s,
                    )
                with self._cond:
                    if self._abandoned:
                        return
                    self.retries += 1
                    wait = min(delay, max(0.0, deadline - time.monotonic()))
                    if wait > 0 and closing_at is None:
                        # Woken early by close(): the back-off is cut to the flush deadline.
                        self._cond.wait_for(lambda: self._closing_at is not None, wait)
                    elif wait > 0:
                        self._cond.wait(wait)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self._settle("sent")
            return

    def _settle(self, outcome: str) -> None:
        """Count the alert in flight as `sent` or `failed`, unless close() already counted it
        as dropped (it gave up waiting for this thread)."""
        with self._cond:
            if not self._abandoned:
                setattr(self, outcome, getattr(self, outcome) + 1)


class Alerter:
    """The sender of one `AlertsConfig`: a thread per target (module docstring). Made and
    shared by `harness.alerts.open_alerter`; `close()` once per open."""

    def __init__(
        self,
        config: AlertsConfig,
        secrets: Iterable[str] = (),
        *,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._kinds = frozenset(config.events) | {TEST}
        self._scrub = AlertScrubber(secrets)
        for url in config.urls:
            self._scrub.add(target_secrets(url))
        self._users = 1
        self._lock = threading.Lock()
        self._on_closed = on_closed
        self._closed = False
        self.targets = [_Target(url, config, self._scrub) for url in config.urls]

    def share(self, secrets: Iterable[str]) -> None:
        """One more owner (a harness opened with the same config), with its secrets."""
        with self._lock:
            self._users += 1
            self._scrub.add(secrets)

    def submit(self, alert: Alert) -> None:
        """Queue `alert` (scrubbed) for each target if `alerts.events` selects its kind."""
        if alert.kind not in self._kinds or self._closed:
            return
        clean = self._scrub.alert(alert)
        for target in self.targets:
            target.submit(clean)

    def stats(self) -> AlertStats:
        """The figures, summed over the targets (`AlertStats`)."""
        t = self.targets
        return AlertStats(
            sent=sum(x.sent for x in t),
            failed=sum(x.failed for x in t),
            dropped=sum(x.dropped for x in t),
            retries=sum(x.retries for x in t),
            pending=sum(x.pending() for x in t),
        )

    def flush(self, timeout_s: float) -> bool:
        """Wait until nothing is pending (True) or `timeout_s` passes (False); for tests."""
        deadline = time.monotonic() + timeout_s
        while any(t.pending() for t in self.targets):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, *, force: bool = False) -> AlertStats:
        """One owner is done; the last (or `force`, at exit) sends what is pending within
        `alerts.flush_s`, stops the threads and counts what was left as dropped."""
        with self._lock:
            self._users -= 1
            if self._closed or (self._users > 0 and not force):
                return self.stats()
            self._closed = True
        if self._on_closed is not None:
            self._on_closed()
        flush_s = self.config.flush_s
        for target in self.targets:
            target.close(flush_s)
        deadline = time.monotonic() + flush_s
        for target in self.targets:
            left = target.join(deadline)
            if left:
                log.warning(
                    "alerts: %d alert(s) to %s not sent within alerts.flush_s (%g s): dropped",
                    left,
                    target.shown,
                    flush_s,
                )
        return self.stats()


def send_test(
    config: AlertsConfig, alert: Alert, secrets: Iterable[str] = ()
) -> list[TargetAnswer]:
    """`alert` to every target of `config` at once, one attempt each (`alerts.timeout_s`),
    in order; what each answered. For `harness alerts test`."""
    scrub = AlertScrubber(secrets)
    for url in config.urls:
        scrub.add(target_secrets(url))
    clean = scrub.alert(alert)
    answers: list[TargetAnswer] = [TargetAnswer("", False, "")] * len(config.urls)

    def one(i: int, url: str) -> None:
        try:
            answers[i] = TargetAnswer(
                redact_target(url), True, send_once(url, clean, config.timeout_s, scrub)
            )
        except _Failure as exc:
            answers[i] = TargetAnswer(redact_target(url), False, str(exc))
        except Exception as exc:
            answers[i] = TargetAnswer(
                redact_target(url), False, scrub(f"{type(exc).__name__}: {exc}")
            )

    threads = [
        threading.Thread(target=one, args=(i, u), daemon=True) for i, u in enumerate(config.urls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers
