"""Extract log-mel + MFCC sequences from a folder of audio into a feature store.

    python -m keras_music.extract ../shared/audio --out stores/shared-audio
    python -m keras_music.extract music/ --out stores/music --n-mels 96 --hop-length 512 --workers 2

Walks AUDIO_DIR recursively for .wav/.flac/.ogg/.mp3, decodes with tensorflow-io,
resamples and computes features in parallel worker processes, and writes sharded TFRecords with a
manifest (see `keras_music.data.store`). Re-running the same command resumes: clips
already in the manifest are skipped. Files that cannot be used (corrupt, empty, silent,
duplicate clip id) are reported with the reason and skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

from keras_music.config import FeatureRecipe, config_from_dict

logger = logging.getLogger("keras_music.extract")

EXAMPLES = """examples:
  python -m keras_music.extract ../shared/audio --out stores/shared-audio
  python -m keras_music.extract music/ --out stores/music96 --n-mels 96 --hop-length 512 --workers 2
"""


def find_audio(audio_dir: Path) -> list[Path]:
    """Audio files below `audio_dir` (recursive, by extension, case-insensitive), sorted."""
    from keras_music.audio import AUDIO_EXTENSIONS

    if not audio_dir.is_dir():
        raise FileNotFoundError(f"Audio folder {str(audio_dir)!r} does not exist or is not a folder.")
    files = sorted(p for p in audio_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"No audio files in {str(audio_dir)!r} or below (looked for "
                                f"{', '.join(AUDIO_EXTENSIONS)}).")
    return files


def _worker_context():
    """A fork server that has imported TensorFlow once: workers fork from it in milliseconds
    instead of each importing TensorFlow (seconds), and no worker inherits a running TF runtime."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["keras_music.extract", "keras_music.audio", "tensorflow_io"])
    return context


def _init_worker() -> None:
    """One TensorFlow thread per worker process: the parallelism is across processes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def extract_clip(path: Path, clip_id: str, recipe: FeatureRecipe) -> tuple[dict, bytes]:
    """Decode one file and return its manifest entry and serialized example."""
    from keras_music.audio import compute_features, load_audio
    from keras_music.data.store import serialize_clip

    samples = load_audio(path, recipe)
    mel, mfcc = compute_features(samples, recipe)
    entry = {"clip_id": clip_id, "source": str(path), "frames": int(mel.shape[0]),
             "seconds": round(samples.size / recipe.sample_rate, 4)}
    return entry, serialize_clip(clip_id, mel, mfcc)


def _run_in_order(pool, todo, recipe, workers):
    """Yield `extract_clip` results (or the AudioDecodeError) in input order.

    At most `4 * workers` clips are in flight, so memory stays bounded on large folders.
    """
    from keras_music.audio import AudioDecodeError

    def call(path, clip_id):
        try:
            return extract_clip(path, clip_id, recipe)
        except AudioDecodeError as error:
            return error

    if pool is None:
        yield from (call(path, clip_id) for path, clip_id in todo)
        return
    window = collections.deque()
    items = iter(todo)
    for path, clip_id in itertools.islice(items, 4 * workers):
        window.append(pool.submit(extract_clip, path, clip_id, recipe))
    while window:
        future = window.popleft()
        try:
            yield future.result()
        except AudioDecodeError as error:
            yield error
        for path, clip_id in itertools.islice(items, 1):
            window.append(pool.submit(extract_clip, path, clip_id, recipe))


@dataclasses.dataclass
class ExtractionSummary:
    found: int = 0
    skipped: int = 0  # already in the store
    written: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason)


def extract_folder(audio_dir: str | Path, out: str | Path, recipe: FeatureRecipe = FeatureRecipe(),
                   workers: int | None = None, shard_size: int = 64, limit: int | None = None,
                   progress=None) -> ExtractionSummary:
    """Extract every new audio file of `audio_dir` into the store at `out` (resumable).

    Args:
        audio_dir: folder searched recursively.
        out: store folder; created, or resumed if it exists with the same recipe.
        recipe: FeatureRecipe. Defaults to the shared 4Q recipe.
        workers: int. Parallel worker processes. Defaults to the number of CPUs.
        shard_size: int. Clips per TFRecord shard (and per manifest update).
        limit: int or None. Stop after this many new clips (for trials and tests).
        progress: callable(done, total, name) or None. Called after each clip.
    """
    from keras_music.audio import AudioDecodeError
    from keras_music.data.store import FeatureStore

    audio_dir = Path(audio_dir)
    files = find_audio(audio_dir)
    store = FeatureStore(out)
    store.open_for_writing(recipe)
    done = {entry["source"] for entry in store.manifest()}
    taken = {entry["clip_id"]: entry["source"] for entry in store.manifest()}
    summary = ExtractionSummary(found=len(files))

    todo = []
    for path in files:
        if str(path) in done:
            summary.skipped += 1
            continue
        clip_id = path.stem
        if clip_id in taken:
            summary.failed.append((str(path), f"duplicate clip id {clip_id!r} (also {taken[clip_id]})"))
            continue
        taken[clip_id] = str(path)
        todo.append((path, clip_id))
    if limit is not None:
        todo = todo[:limit]

    pending: list[tuple[dict, bytes]] = []
    workers = workers or os.cpu_count() or 1
    # Processes, not threads: tensorflow-io's audio reader is not thread-safe (concurrent
    # readers in one process mix up files), and processes also sidestep the GIL.
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=_worker_context(), initializer=_init_worker) \
        if workers > 1 and len(todo) > 1 else None
    try:
        for index, ((path, _), result) in enumerate(zip(todo, _run_in_order(pool, todo, recipe, workers)), start=1):
            if isinstance(result, AudioDecodeError):
                summary.failed.append((str(path), str(result)))
            else:
                pending.append(result)
            if len(pending) >= shard_size:
                store.write_shard(pending)
                summary.written += len(pending)
                pending = []
            if progress:
                progress(index, len(todo), path.name)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if pending:
        store.write_shard(pending)
        summary.written += len(pending)
    return summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.extract",
        description="Audio folder -> feature store of log-mel + MFCC sequences (resumable).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("audio_dir", type=Path, help="Folder of .wav/.flac/.ogg/.mp3 files (searched recursively).")
    parser.add_argument("--out", type=Path, required=True, help="Feature store folder to create or resume.")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="FeatureRecipe JSON (e.g. a store's recipe.json). Default: the 4Q recipe "
                             "(22,050 Hz, n_fft 2048, hop 1024, 64 mels, 20 MFCC).")
    parser.add_argument("--n-mels", type=int, default=None, help="Override the recipe's mel bands.")
    parser.add_argument("--hop-length", type=int, default=None, help="Override the recipe's hop (samples).")
    parser.add_argument("--workers", type=int, default=None, help="Parallel worker processes. Default: number of CPUs.")
    parser.add_argument("--shard-size", type=int, default=64, help="Clips per shard. Default: 64.")
    parser.add_argument("--force", action="store_true", help="Delete the store at --out and start over.")
    parser.add_argument("--dry-run", action="store_true", help="List the files that would be extracted, and stop.")
    return parser.parse_args(argv)


def recipe_from_args(args) -> FeatureRecipe:
    recipe = FeatureRecipe()
    if args.recipe:
        if not args.recipe.is_file():
            raise FileNotFoundError(f"Recipe file {str(args.recipe)!r} does not exist.")
        recipe = config_from_dict(FeatureRecipe, json.loads(args.recipe.read_text()), source=str(args.recipe))
    overrides = {"n_mels": args.n_mels, "hop_length": args.hop_length}
    return dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.data.store import FeatureStore, StoreError

    try:
        recipe = recipe_from_args(args)
        if args.dry_run:
            done = {e["source"] for e in FeatureStore(args.out).manifest()} if not args.force else set()
            for path in find_audio(args.audio_dir):
                print(("skip (stored) " if str(path) in done else "extract ") + str(path))
            return 0
        if args.force and args.out.exists():
            shutil.rmtree(args.out)
        start = time.perf_counter()

        def progress(done, total, name):
            print(f"\r[{done}/{total}] {name[:60]:<60}", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)

        summary = extract_folder(args.audio_dir, args.out, recipe, workers=args.workers,
                                 shard_size=args.shard_size, progress=progress)
    except (FileNotFoundError, StoreError, ValueError) as error:
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
