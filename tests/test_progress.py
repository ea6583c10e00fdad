"""The progress line: one updating line on a terminal, whole lines at intervals in a log."""

from __future__ import annotations

import io

from keras_music.progress import Progress


def test_log_gets_a_line_every_n_files_and_no_carriage_returns():
    stream = io.StringIO()
    progress = Progress(100, stream=stream, tty=False, seconds=1e9)
    for i in range(100):
        progress.update(f"song{i}.mp3", failed=i == 3)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 20
    assert "100/100, 1 failed" in lines[-1] and "files/s" in lines[-1]


def test_terminal_gets_one_rewritten_line_ending_in_a_newline():
    stream = io.StringIO()
    progress = Progress(3, stream=stream, tty=True)
    for i in range(3):
        progress.update(f"song{i}.mp3")
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and "\r" in text and "3/3" in text


def test_callback_makes_its_bar_at_the_first_call_with_the_clock_from_its_creation():
    import time

    from keras_music.progress import ProgressCallback

    callback = ProgressCallback()
    callback.close()  # nothing ran: no line
    assert callback.bar is None
    time.sleep(0.05)
    stream = io.StringIO()
    callback(1, 2, "a.wav")
    callback.bar.stream, callback.bar.tty = stream, False
    assert callback.bar.total == 2 and callback.bar.start == callback.started
    assert time.monotonic() - callback.bar.start >= 0.05  # the rate counts from creation, not the first file
    callback(2, 2, "b.wav", failed=True)
    callback.close()
    assert "2/2, 1 failed" in stream.getvalue().splitlines()[-1]
