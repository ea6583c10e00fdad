"""A progress line on stderr for long loops over files (predict, extract).

On a terminal it is one line rewritten in place (at most a few times a second); in a log
file or pipe it prints a full line every `every` items or every `seconds`, so a log has no
carriage-return spam. Layer 0: standard library only.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """`done/total`, failures, rate and time left of a loop; call `update()` per item, `close()` at the end.

    Args:
        total: items expected.
        stream: where to write (default stderr); a terminal gets one updating line.
        every: a log line every this many items (default: about every 5 % of `total`).
        seconds: ... or after this many seconds without a line.
        tty: override the terminal test (tests).
    """

    BAR = 24

    def __init__(self, total: int, stream=None, every: int | None = None, seconds: float = 10.0,
                 tty: bool | None = None, unit: str = "files"):
        self.total, self.stream, self.unit = total, stream or sys.stderr, unit
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every or max(1, total // 20)
        self.seconds = seconds
        self.done = self.failed = 0
        self.start = self._last = time.monotonic()
        self._last_done = 0

    def line(self, name: str = "") -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        filled = int(self.BAR * self.done / max(self.total, 1))
        left = f" ETA {_duration((self.total - self.done) / rate)}" if 0 < rate and self.done < self.total else ""
        failed = f", {self.failed} failed" if self.failed else ""
        text = (f"[{'#' * filled}{'.' * (self.BAR - filled)}] {self.done}/{self.total}{failed} "
                f"{rate:.1f} {self.unit}/s {_duration(elapsed)}{left}")
        return f"{text} {name[-40:]}" if name else text

    def update(self, name: str = "", failed: bool = False, count: int = 1) -> None:
        self.done += count
        self.failed += failed
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.2 or self.done >= self.total:
                self.stream.write("\r\x1b[K" + self.line(name))
                self.stream.flush()
                self._last = now
        elif self.done - self._last_done >= self.every or now - self._last >= self.seconds:
            self.stream.write(self.line(name) + "\n")
            self.stream.flush()
            self._last, self._last_done = now, self.done

    def close(self) -> None:
        """The final line (always printed, ending the terminal's updating line)."""
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line() + "\n")
        elif self._last_done != self.done or not self.done:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


class ProgressCallback:
    """`extract_folder`'s `progress(done, total, name, failed)` callback drawing a `Progress`.

    The total is known only once the folder is planned (files already stored are left out),
    so the `Progress` is made at the first call, but its clock runs from this object's
    creation: the rate covers the whole run. `close()` prints the final line (if any item ran).
    """

    def __init__(self, unit: str = "files"):
        self.unit, self.started, self.bar = unit, time.monotonic(), None

    def __call__(self, done: int, total: int, name: str = "", failed: bool = False) -> None:
        if self.bar is None:
            self.bar = Progress(total, unit=self.unit)
            self.bar.start = self.started
        self.bar.update(name, failed=failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
