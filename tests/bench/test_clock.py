"""bench.clock: a fit's seconds survive a kill of the bench and add up when it resumes."""

from __future__ import annotations

import json
import time

import pytest

from bench.clock import FitClock


def test_fit_clock_counts_the_seconds_of_every_part_of_a_fit(tmp_path):
    path = tmp_path / "fit" / "seconds.json"
    with FitClock(path, every=0.05):
        time.sleep(0.3)  # the process is killed here: no exit, only what the thread wrote
    first = json.loads(path.read_text())["seconds"]
    assert 0.2 <= first <= 0.35
    with FitClock(path, every=0.05) as clock:  # the same fit, resumed
        assert clock.before == first
        time.sleep(0.1)
    assert clock.seconds() == pytest.approx(first + 0.1, abs=0.05)
    assert FitClock(None).__enter__().before == 0.0  # no folder: this process's seconds only


def test_an_unreadable_count_starts_from_zero_and_no_path_writes_nothing(tmp_path):
    path = tmp_path / "seconds.json"
    path.write_text('{"seconds": ')  # cut short by a kill
    with FitClock(path, every=10) as clock:
        assert clock.before == 0.0
    assert clock.seconds() < 1
    with FitClock(None, every=0.01) as clock:
        time.sleep(0.05)
    assert clock.seconds() >= 0.05 and list(tmp_path.iterdir()) == [path]
