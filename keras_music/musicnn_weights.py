"""Convert musicnn 0.1.0's trained weights for keras_music ahead of time, offline.

    python -m keras_music.musicnn_weights                    # both, from the installed wheel, into the cache
    python -m keras_music.musicnn_weights --checkpoint DIR [--out FILE.npz]

First use of a musicnn model converts its weights anyway (`models.musicnn.weights_path`); this
command does it before, e.g. while building an image that will run offline, or from a
checkpoint folder of an unzipped wheel when musicnn itself is not installed. A command module
of its own (not `python -m keras_music.models.musicnn`): running a module of the `models`
package as `__main__` imports it twice, and TensorFlow would load before its start-up lines
could be filtered.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_music.tf_logging import import_tensorflow

EXAMPLES = """examples:
  python -m keras_music.musicnn_weights
  python -m keras_music.musicnn_weights --checkpoint musicnn-0.1.0/musicnn/MSD_musicnn/ --out weights/MSD_musicnn.npz
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.musicnn_weights",
        description="Convert musicnn 0.1.0's trained weights (MTT_musicnn, MSD_musicnn) for keras_music, offline. "
                    "Without --checkpoint: both, from the installed musicnn wheel, into the cache where models "
                    "look for them (what first use does anyway).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="One checkpoint folder of musicnn 0.1.0, e.g. an unzipped wheel's musicnn/MTT_musicnn/ "
                             "(`pip download musicnn==0.1.0 --no-deps`). Default: the installed wheel's two.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Output .npz (with --checkpoint). Default: $KERAS_MUSIC_CACHE/musicnn/<folder name>.npz, "
                             "where models look.")
    args = parser.parse_args(argv)
    if args.out and not args.checkpoint:
        parser.error("--out goes with --checkpoint.")
    if args.out and args.out.suffix != ".npz":
        parser.error(f"--out {args.out}: the weights file must end in .npz.")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)  # usage errors and --help before TensorFlow loads
    import_tensorflow()
    from keras_music.models.musicnn import (
        INSTALL_HINT,
        WEIGHTS,
        checkpoint_arrays,
        installed_checkpoint,
        save_weights,
        weights_dir,
    )

    if args.checkpoint:
        jobs = [(args.checkpoint, args.out or weights_dir() / f"{args.checkpoint.resolve().name}.npz")]
    else:
        jobs = [(installed_checkpoint(weights), weights_dir() / f"{weights}.npz") for weights in WEIGHTS]
        if any(checkpoint is None for checkpoint, _ in jobs):
            print(f"error: musicnn 0.1.0 is not installed: `{INSTALL_HINT}`, or give --checkpoint.", file=sys.stderr)
            return 1
    for checkpoint, out in jobs:
        try:
            arrays = checkpoint_arrays(checkpoint)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        save_weights(arrays, out)
        print(f"{out}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} values from {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
