"""The progress line of `harness bars` on stderr: each stage and the seconds since the start."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """A one-line text progress display on stderr (silent when `stream` is None)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.started = time.perf_counter()

    def stage(self, text: str) -> None:
        """Show the stage now running."""
        if self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r{f'[{elapsed:6.2f} s] {text}':<70}")
            self.stream.flush()

    def end_line(self) -> None:
        """Leave the progress line as it is, so that a message can follow on its own line."""
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r{'done in ' + format(elapsed, '.2f') + ' s':<70}\n")
            self.stream.flush()
