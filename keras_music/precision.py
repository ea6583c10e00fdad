"""Which arithmetic a tagging process runs its graphs in: float32, or bfloat16 where the CPU has it.

On CPUs with native bfloat16 (Intel's AVX512-BF16 or AMX, e.g. Sapphire Rapids; AMD Zen 4),
TensorFlow's oneDNN back end can run convolutions and matrix products in bfloat16 (with float32
accumulation and variables) when its grappler option `auto_mixed_precision_onednn_bfloat16` is
on. For the packaged musicnn model that halves the time per window (16.9 vs 32.2 ms for both
networks on 2 cores) for a change in accuracy of -0.001 +- 0.007 over 5 artist folds x 2 seeds
(99.1% of the argmax quadrants unchanged, probabilities within 0.05; `bench.tagger_speed`).
Elsewhere bfloat16 is emulated and slower, so `auto` keeps float32 there.

`$KERAS_MUSIC_PRECISION` (float32 or bfloat16) decides what `auto` means where it is set (the
test suite sets float32, so exact comparisons stay exact).

The option is TensorFlow's and process-wide: once on, every graph that runs later in the process
gets it, a training too. The commands (`predict`, the Beam tagger) own their process and use
`auto`; `keras_music.Tagger` uses float32 unless it is given `precision="bfloat16"` or `"auto"`.

>>> resolve_precision("float32")
'float32'
>>> resolve_precision("auto") in ("float32", "bfloat16")
True
"""

from __future__ import annotations

import os
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
GRAPPLER_OPTION = "auto_mixed_precision_onednn_bfloat16"
PRECISION_ENV = "KERAS_MUSIC_PRECISION"  # what `auto` means, where set


def native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (its flags list avx512_bf16 or amx_bf16; Linux).
    False where that cannot be read (other systems): float32 is never the slow choice."""
    try:
        flags = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in NATIVE_BFLOAT16_FLAGS)


def resolve_precision(precision: str) -> str:
    """`float32` or `bfloat16` for `precision` (`auto`: bfloat16 on CPUs with native bfloat16).
    Raises `ParameterError` for anything else."""
    from keras_music.errors import ParameterError

    if precision not in PRECISIONS:
        raise ParameterError("precision", precision, f"expected one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        forced = os.environ.get(PRECISION_ENV, "")
        if forced:
            if forced not in ("float32", "bfloat16"):
                raise ParameterError(PRECISION_ENV, forced, "expected float32 or bfloat16 (or unset).")
            return forced
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


def use_precision(precision: str) -> str:
    """Turn TensorFlow's oneDNN bfloat16 auto mixed precision on when `precision` resolves to
    bfloat16 (process-wide, see the module docstring); returns what it resolved to. TensorFlow
    optimises a graph again when the option changes, so it applies to graphs loaded before too."""
    resolved = resolve_precision(precision)
    if resolved == "bfloat16":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({GRAPPLER_OPTION: True})
    return resolved
