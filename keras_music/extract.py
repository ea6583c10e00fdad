"""Extract a recipe's named features (log-mel + MFCC by default) from a folder of audio into a feature store.

    python -m keras_music.extract ../shared/audio --out stores/shared-audio
    python -m keras_music.extract music/ --out stores/music --n-mels 96 --hop-length 512 --workers 2
    python -m keras_music.extract music/ --out stores/musicnn --recipe musicnn
    python -m keras_music.extract music/ --out stores/music --runner DirectRunner --direct_num_workers 2

Walks AUDIO_DIR recursively for .wav/.flac/.ogg/.opus/.mp3, decodes with libsndfile (or
tensorflow-io with --decoder tfio), resamples with the recipe's resampler and computes
features in parallel threads, and writes sharded TFRecords with a
manifest (see `keras_music.data.store`). Re-running the same command resumes: clips
already in the manifest are skipped. Files that cannot be used (corrupt, empty, silent,
duplicate clip id) are reported with the reason and skipped; the exit status is then 1.
The work is done by `keras_music.data.extraction`; this module is only the command line.

With `--runner` (pip install "keras_music[beam]") the same work runs as an Apache Beam
pipeline (`keras_music.beam.extract`) on that runner, and every argument this command does
not know is a Beam pipeline option (`--direct_num_workers 2`, Dataflow's `--project`,
`--region`, `--temp_location`...). The store is the same; `train` cannot tell them apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from keras_music.config import RECIPES, FeatureRecipe
from keras_music.data.extraction import extract_folder, find_audio
from keras_music.remote import has_scheme
from keras_music.progress import ProgressCallback
from keras_music.tf_logging import import_tensorflow

logger = logging.getLogger("keras_music.extract")

EXAMPLES = """examples:
  python -m keras_music.extract ../shared/audio --out stores/shared-audio
  python -m keras_music.extract music/ --out stores/music96 --n-mels 96 --hop-length 512 --workers 2
  python -m keras_music.extract music/ --out stores/musicnn --recipe musicnn
  python -m keras_music.extract music/ --out stores/music --runner DirectRunner --direct_num_workers 2 \\
      --direct_running_mode multi_processing          # Apache Beam: pip install "keras_music[beam]"
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.extract",
        description="Audio folder -> feature store of the recipe's feature sequences (resumable).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("audio_dir", help="Folder of audio files (.wav, .flac, .ogg, .opus, .mp3; searched "
                        "recursively).")
    parser.add_argument("--out", required=True, help="Feature store folder to create or resume.")
    parser.add_argument("--recipe", default=None,
                        help=f"A named recipe ({', '.join(RECIPES)}) or a FeatureRecipe JSON file (e.g. a store's "
                             "recipe.json). Default: 4q (22,050 Hz, n_fft 2048, hop 1024, 64 mels, 20 MFCC).")
    parser.add_argument("--n-mels", type=int, default=None, help="Override the recipe's mel bands.")
    parser.add_argument("--hop-length", type=int, default=None, help="Override the recipe's hop (samples).")
    parser.add_argument("--resampler", choices=["soxr_hq", "fft"], default=None,
                        help="Override the recipe's resampler: soxr_hq (default; librosa's, and what the shared 4Q "
                             "features used) or fft (the exported serve_audio graph's).")
    parser.add_argument("--decoder", choices=["soundfile", "tfio"], default="soundfile",
                        help="soundfile (libsndfile; default) or tfio (tensorflow-io; pip install "
                             "'keras_music[tfio]', TensorFlow 2.17 only).")
    parser.add_argument("--workers", type=int, default=None, help="Parallel worker threads. Default: number of CPUs.")
    parser.add_argument("--shard-size", type=int, default=64, help="Clips per shard. Default: 64.")
    parser.add_argument("--force", action="store_true", help="Delete the store at --out and start over.")
    parser.add_argument("--dry-run", action="store_true", help="List the files that would be extracted, and stop.")
    parser.add_argument("--runner", default=None,
                        help="Run as an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, FlinkRunner, "
                             "SparkRunner, ...); the arguments this command does not know go to Beam as pipeline "
                             "options. --workers is then Beam's business (e.g. --direct_num_workers).")
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and not args.runner:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)} (Beam pipeline options need --runner)")
    args.beam_args = ["--runner", args.runner, *beam_args] if args.runner else []
    if has_scheme(args.out):
        parser.error(f"--out {args.out}: the store is written through file paths (on a cluster, a folder every "
                     "worker mounts); a store on a remote filesystem is not supported.")
    if has_scheme(args.audio_dir) and not args.runner:
        parser.error(f"{args.audio_dir}: a remote folder needs the Beam pipeline (--runner), which reads any "
                     "filesystem Beam does.")
    args.out = Path(args.out)
    if not args.runner:  # Beam takes the string: a `gs://` folder would not survive Path
        args.audio_dir = Path(args.audio_dir)
    return args


def recipe_from_args(args) -> FeatureRecipe:
    """The recipe `--recipe` names (preset or JSON file), with `--n-mels` / `--hop-length` applied."""
    recipe = FeatureRecipe()
    if args.recipe in RECIPES:
        recipe = RECIPES[args.recipe]
    elif args.recipe:
        path = Path(args.recipe)
        if not path.is_file():
            raise FileNotFoundError(f"--recipe {args.recipe!r}: neither a named recipe ({', '.join(RECIPES)}) "
                                    "nor an existing recipe JSON file.")
        recipe = FeatureRecipe.from_dict(json.loads(path.read_text()), source=str(path))
    overrides = {"n_mels": args.n_mels, "hop_length": args.hop_length, "resampler": args.resampler}
    return dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # the common mistakes (a mistyped folder, one without audio, a bad --recipe) answer at once
        recipe = recipe_from_args(args)
        # listed once, here: a remote folder is Beam's to list (None)
        files = None if has_scheme(args.audio_dir) else find_audio(Path(args.audio_dir))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.data.store import FeatureStore, StoreError

    try:
        if args.dry_run:
            if files is None:  # a remote folder: listed by Beam's filesystems, as the pipeline will
                from keras_music.beam import pipeline_options
                from keras_music.beam.files import list_audio

                files = list_audio(args.audio_dir, pipeline_options(args.beam_args))
            done = {e["source"] for e in FeatureStore(args.out).manifest()} if not args.force else set()
            for path in files:
                print(("skip (stored) " if str(path) in done else "extract ") + str(path))
            return 0
        if args.force and Path(args.out).exists():
            shutil.rmtree(args.out)
        start = time.perf_counter()
        progress = ProgressCallback()
        if args.runner:
            from keras_music.beam.extract import extract_with_beam

            summary = extract_with_beam(args.audio_dir, args.out, recipe, args.beam_args,
                                        shard_size=args.shard_size, decoder=args.decoder,
                                        sources=None if files is None else [str(path) for path in files])
        else:
            summary = extract_folder(args.audio_dir, args.out, recipe, workers=args.workers,
                                     shard_size=args.shard_size, progress=progress, decoder=args.decoder,
                                     files=files)
        progress.close()
    except (FileNotFoundError, ImportError, StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(f"{summary.found} audio files: {summary.written} extracted, {summary.skipped} already in the store, "
          f"{len(summary.failed)} failed ({seconds:.1f} s). Store: {args.out}")
    for path, reason in summary.failed:
        print(f"  skipped: {reason}" if path in reason else f"  skipped {path}: {reason}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
