"""The wall-clock seconds of one benchmark fit, kept across restarts of the bench.

A fit that a killed bench resumes from its last backed-up epoch should report the seconds of
every part of it, not only those of the last process: `FitClock` writes its count to a file
while the fit runs and starts from that count when the same fit runs again.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from keras_music.config import atomic_path


class FitClock:
    """Seconds one fit has run, across restarts: written to `path` every `every` seconds (by a
    daemon thread), so that a fit resumed after a kill reports its whole time, less at most
    `every` seconds lost at the kill. Without a path: this process's seconds only."""

    def __init__(self, path: Path | None, every: float = 30.0):
        self.path, self.every, self.before = path, every, 0.0
        if path is not None and path.is_file():
            try:
                self.before = float(json.loads(path.read_text())["seconds"])
            except (ValueError, KeyError, TypeError):
                self.before = 0.0  # unreadable: count from now
        self._stop = threading.Event()
        self._thread, self.end = None, None

    def seconds(self) -> float:
        return self.before + (self.end if self.end is not None else time.perf_counter()) - self.start

    def _save(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"seconds": self.seconds()}))

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._save()

    def __enter__(self) -> FitClock:
        self.start = time.perf_counter()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._tick, name="fit-clock", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.end = time.perf_counter()
