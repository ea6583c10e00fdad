"""Convert musicnn 0.1.0's trained weights for keras_music, offline.

    python -m keras_music.musicnn_weights --packaged         # rebuild the shipped files + weights.json
    python -m keras_music.musicnn_weights                    # both, from the installed wheel, into the cache
    python -m keras_music.musicnn_weights --checkpoint DIR [--out FILE.npz]

keras_music ships both converted files (`keras_music/pretrained/musicnn/`), so a user never
needs this. `--packaged` is the maintainer's way to rebuild them and their manifest of sha256
digests from the musicnn 0.1.0 wheel (the same bytes again for the same arrays). Without it,
the command fills the cache, the fallback that models use when no shipped file is there
(`models.musicnn.converted_weights`), or converts a checkpoint folder of an unzipped wheel
when musicnn itself is not installed. A command module
of its own (not `python -m keras_music.models.musicnn`): running a module of the `models`
package as `__main__` imports it twice, and TensorFlow would load before its start-up lines
could be filtered.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_music.config import MUSICNN_MANIFEST_NAME, MUSICNN_PACKAGED_DIR
from keras_music.tf_logging import import_tensorflow

EXAMPLES = """examples:
  python -m keras_music.musicnn_weights --packaged
  python -m keras_music.musicnn_weights
  python -m keras_music.musicnn_weights --checkpoint musicnn-0.1.0/musicnn/MSD_musicnn/ --out weights/MSD_musicnn.npz
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.musicnn_weights",
        description="Convert musicnn 0.1.0's trained weights (MTT_musicnn, MSD_musicnn) for keras_music, offline. "
                    "keras_music ships both converted; --packaged rebuilds those files and their manifest from "
                    "the installed musicnn wheel. Without --packaged or --checkpoint: both, from the installed "
                    "wheel, into the cache (where models look when no shipped file is there).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="One checkpoint folder of musicnn 0.1.0, e.g. an unzipped wheel's musicnn/MTT_musicnn/ "
                             "(`pip download musicnn==0.1.0 --no-deps`). Default: the installed wheel's two.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Output .npz (with --checkpoint). Default: $KERAS_MUSIC_CACHE/musicnn/<folder name>.npz, "
                             "where models look.")
    parser.add_argument("--packaged", nargs="?", type=Path, const=MUSICNN_PACKAGED_DIR, default=None, metavar="DIR",
                        help="Rebuild the shipped files from the installed musicnn 0.1.0 wheel: <name>.npz of both "
                             f"and their manifest ({MUSICNN_MANIFEST_NAME}: sha256, sources) in DIR (default: the "
                             f"package's own {MUSICNN_PACKAGED_DIR}).")
    args = parser.parse_args(argv)
    if args.packaged and (args.checkpoint or args.out):
        parser.error("--packaged converts both checkpoints of the installed musicnn wheel; "
                     "it takes no --checkpoint or --out.")
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
        write_packaged_weights,
    )

    if args.packaged:
        try:
            manifest = write_packaged_weights(args.packaged)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        for name, entry in manifest["files"].items():
            print(f"{args.packaged / name}: {entry['arrays']} arrays, {entry['values']:,} values, "
                  f"{entry['bytes']:,} bytes, sha256 {entry['sha256']}")
        print(f"{args.packaged / MUSICNN_MANIFEST_NAME}: musicnn {manifest['musicnn_version']}")
        return 0
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
