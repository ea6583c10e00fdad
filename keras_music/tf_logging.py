"""Start TensorFlow without its C++ start-up chatter.

TensorFlow 2.18+ logs through absl, and absl writes every line logged before
`absl::InitializeLog()` to stderr, INFO included, whatever `TF_CPP_MIN_LOG_LEVEL` says
(abseil/abseil-cpp#1718): `WARNING: All log messages before absl::InitializeLog() ...`, then
oneDNN and "Could not find cuda drivers" lines, once per TensorFlow shared library. The
commands therefore load TensorFlow through `import_tensorflow`, which captures stderr (the file
descriptor: the lines come from C++) while the libraries load and passes on every line except
absl lines below `TF_CPP_MIN_LOG_LEVEL` (default 2: errors and Python output still show).
`TF_CPP_MIN_LOG_LEVEL=0` turns the capture off and shows everything.

Two error lines come later, and say nothing a user can act on: `failed call to cuInit` (the CUDA
platform starting on a machine without a GPU driver) and `oneDNN supports DT_HALF only on
platforms with AVX-512` (or DT_BOOL; once per process, at the first graph that holds such an op,
on CPUs without it: TensorFlow falls back to its own kernels). `import_tensorflow` therefore also
starts the device platforms inside its capture, and `filtered_stderr` captures the first graph
run (`Tagger`'s first `serve_audio` call); below `TF_CPP_MIN_LOG_LEVEL=0` both lines are dropped
(`BENIGN_ERRORS`), every other error line is kept.

TensorFlow's Python logger (`tensorflow`) gets its own stderr handler on its first use if the
root logger has none yet, as in a command that has not configured logging; the commands then
configure the root logger at INFO, so every TensorFlow line came out twice ("INFO:tensorflow:Assets
written to ..." in `export`). `import_tensorflow` therefore makes that first use, stops the logger
passing its lines on to the root logger when it has its own handler, and holds it at WARNING
unless `TF_CPP_MIN_LOG_LEVEL=0` or a caller set its level already. Modules that start TensorFlow
when imported (`keras_music.train`, `tuning`, `bench`) do this to an importing program too.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager

DEFAULT_LEVEL = "2"  # TensorFlow's scale: 0 all, 1 no INFO, 2 no WARNING either, 3 no ERROR either
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+\s+\S+:\d+\] ")  # before init the seconds are epoch seconds
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# Error lines that report no error of ours (see the module's docstring): hidden unless TF_CPP_MIN_LOG_LEVEL=0.
BENIGN_ERRORS = re.compile(r"failed call to cuInit|oneDNN supports DT_\w+ only on platforms with AVX-512")
_CAPTURE_LOCK = threading.RLock()  # fd 2 is the process's: one capture at a time (nested ones in a thread)
_devices_started = False


def min_level() -> int:
    """`TF_CPP_MIN_LOG_LEVEL` as a number (set to the default first if unset)."""
    value = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    try:
        return int(value)
    except ValueError:
        return int(DEFAULT_LEVEL)


def filter_startup_lines(text: str, level: int) -> str:
    """`text` without the absl lines that `level` (TF_CPP_MIN_LOG_LEVEL) hides, nor absl's
    "before InitializeLog" banner and `BENIGN_ERRORS` when anything is hidden; every other
    line is kept as is."""
    if level <= 0:
        return text
    kept = []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == ABSL_BANNER:
            continue
        match = ABSL_LINE.match(line)
        if match and (SEVERITY[match.group(1)] < level or BENIGN_ERRORS.search(line)):
            continue
        kept.append(line)
    return "".join(kept)


def import_tensorflow() -> None:
    """Import TensorFlow once and start its device platforms, with the lines they print filtered by
    `TF_CPP_MIN_LOG_LEVEL`.

    Loads nothing when TensorFlow is already loaded. A missing or broken TensorFlow raises nothing
    here: the caller's own `import` raises it again where it has its own message (`doctor`)."""
    global _devices_started
    import_filtered("tensorflow")
    tensorflow = sys.modules.get("tensorflow")
    get_logger = getattr(tensorflow, "get_logger", None)
    if get_logger is None:  # no TensorFlow, or a broken one (a leftover folder)
        return
    quiet_python_logger(get_logger(), min_level())
    if not _devices_started:
        _devices_started = True
        with filtered_stderr():  # the CUDA platform starts here: cuInit's line on a machine without a GPU
            try:
                tensorflow.config.list_physical_devices()  # physical only: device settings stay possible
            except Exception:  # noqa: BLE001  (the first op reports a broken device setup itself)
                pass


def quiet_python_logger(logger: logging.Logger, level: int) -> None:
    """TensorFlow's Python `logger` printing each line once, and INFO only at `level` 0
    (`TF_CPP_MIN_LOG_LEVEL`). A level set on it before (by a user) is kept."""
    if logger.handlers:  # TensorFlow's own handler: the root logger's would print each line again
        logger.propagate = False
    if level > 0 and logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def import_filtered(module: str) -> None:
    """Import `module` inside `filtered_stderr` (nothing when it is loaded already)."""
    if module in sys.modules:
        return
    with filtered_stderr():
        _try_import(module)


@contextmanager
def filtered_stderr():
    """Capture file descriptor 2 (C++ lines included) while the block runs, then write back what
    `filter_startup_lines` keeps, Python output included and in order. Nothing is captured at
    `TF_CPP_MIN_LOG_LEVEL=0` or without a stderr. Another thread's output in the meantime is
    written back too, after the block."""
    level = min_level()
    if level <= 0:
        yield
        return
    with _CAPTURE_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to guard
            yield
            return
        with tempfile.TemporaryFile() as captured:
            sys.stderr.flush()
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                text = filter_startup_lines(captured.read().decode("utf-8", errors="replace"), level)
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()


def _try_import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001  (a missing or broken module is the caller's to report)
        pass
