"""Tag audio files with an exported emotion model (the SavedModel alone; no training data).

    keras-music predict song.mp3                        # the packaged 4Q model (research use only)
    keras-music predict song.mp3 --model saved_models/emotion_cnn_lstm
    keras-music predict song.mp3 --model emotion_4q_dense --top-k 5   # a window every 1.5 s; 5 names per group
    keras-music predict music/ --model saved_models/emotion_4q --out tags.jsonl --plot curves/
    keras-music predict music/ --embeddings --out music.jsonl
    python -m keras_music.predict long.flac --per-window    # the same command

Files and folders (searched recursively for .wav, .flac, .ogg, .oga, .opus, .mp3) are decoded
(libsndfile, or `--decoder tfio`), mixed to mono, resampled to the model's rate and sent as
WAV bytes to the export's `serve_audio` signature (the graph TF Serving runs), which scores
them as `keras-music evaluate` does: windows of the model's training crop every
`window_hop` frames, a file's probabilities = the sigmoid of the mean of its windows' logits.
Tags at or above the export's per-tag thresholds are listed. Files longer than
`--chunk-seconds` go in overlapping chunks with exactly the whole file's windows (same
scores, bounded memory). `--embeddings` adds each file's embedding (the mean of its windows'
vectors before the tag layer), for search and clustering.

Collections: with `--out X.csv` or `--out X.jsonl` a record is appended as each file finishes,
so a killed run keeps its work and the same command resumes (files already in X are skipped,
failed ones too unless `--retry-failed`). X written with another model or layout is an error,
never mixed. More than 100 files need `--out`. Unreadable files are reported and skipped; the
exit status is 1 when any failed. The library behind it is `keras_music.tagging`
(`keras_music.Tagger` from Python); `python -m keras_music.beam.tag` runs it on Apache Beam.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.tagging.inputs import InputError, check_inputs
from keras_music.tagging.presets import DEFAULT_PRESET, preset_names
from keras_music.tagging.streaming import check_batching
from keras_music.tagging.tagger import check_options
from keras_music.tagging.writers import format_of
from keras_music.tf_logging import import_tensorflow

COLLECTION_FILES = 100
FLAGS = {"chunk_seconds": "--chunk-seconds", "batch_size": "--batch-size", "jobs": "--jobs", "model": "--model",
         "out": "--out", "top_k": "--top-k"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keras-music predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="Audio files and/or folders (recursive).")
    parser.add_argument("--model", default=None,
                        help="Export folder: saved_models/NAME or saved_models/NAME/VERSION, or the name of a "
                             f"packaged model ({', '.join(preset_names())}). Default: the packaged 4Q emotion model "
                             "emotion_4q (see its MODEL_CARD.md: research use only), built on first use, offline, "
                             "into $KERAS_MUSIC_CACHE/models/.")
    parser.add_argument("--format", choices=["csv", "json", "jsonl"], default=None,
                        help="csv, json (one document) or jsonl (one object per file). Default: from --out's "
                             "extension (.jsonl, .json), else csv.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores (a curve).")
    parser.add_argument("--embeddings", action="store_true",
                        help="Also output each file's embedding. JSON/JSONL: a list under 'embedding'; CSV: columns "
                             "emb_0..emb_<width-1> (not with --per-window).")
    parser.add_argument("--top-k", type=int, default=3,
                        help="Models whose front end has tags of its own (the packaged model: musicnn's MSD and "
                             "MTT tags): how many names of each group (genre, mood, instrument, vocals, era, sound) "
                             "to list, most probable first. Default: 3.")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="auto: bfloat16 on CPUs that compute it natively (AVX512-BF16/AMX; about twice as fast "
                             "for the packaged model, probabilities within 0.05), else float32. Default: auto.")
    parser.add_argument("--chunk-seconds", type=float, default=60.0,
                        help="Most audio per serve_audio call (memory); at least 60. Default: 60.")
    parser.add_argument("--batch-size", type=int, default=8, help="Most files (chunks) per call. Default: 8.")
    parser.add_argument("--decoder", choices=["soundfile", "tfio"], default="soundfile",
                        help="soundfile (libsndfile; default) or tfio (tensorflow-io, optional).")
    parser.add_argument("--jobs", type=int, default=2, help="Threads decoding while the model scores. Default: 2.")
    parser.add_argument("--out", default=None,
                        help="Output file. csv/jsonl: a record per finished file, resumed when run again; json: "
                             f"written atomically at the end. Required for more than {COLLECTION_FILES} files.")
    parser.add_argument("--retry-failed", action="store_true", help="Resuming: try the failed files again.")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="Write a PNG per file of its per-window curve (quadrant models: also arousal and "
                             "valence) into DIR.")
    args = parser.parse_args(argv)
    try:
        check_batching(args.chunk_seconds, args.batch_size, args.jobs)
        check_options(top_k=args.top_k)  # the Tagger's own check, before any model loads
    except ParameterError as error:
        parser.error(error.for_flags(FLAGS))
    args.format = format_of(args.out, args.format)
    if args.embeddings and args.per_window and args.format == "csv":
        parser.error("--embeddings with --per-window needs --format json or jsonl (CSV rows are windows there; "
                     "embeddings are per file).")
    return args


def plot_name(path: Path, root: Path) -> str:
    """`sub__song.mp3.png`: the file's path under the inputs' common folder, so same-named files do not clash."""
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return "__".join(relative.parts) + ".png"


def skipped_line(name: str, reason: str) -> str:
    """`skipped NAME: reason`, naming the file once: decoding errors start with its name already."""
    return f"skipped {reason}" if reason.startswith(f"{name}: ") else f"skipped {name}: {reason}"


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = DEFAULT_PRESET if args.model is None else args.model if (
        args.model in preset_names() and not Path(args.model).exists()) else None
    if preset:
        args.model = None  # nothing on disk to check
    elif not Path(args.model).exists() and len(Path(args.model).parts) == 1:
        print(f"error: --model {args.model!r}: no such export folder, nor a packaged model (those are "
              f"{', '.join(preset_names())}).", file=sys.stderr)
        return 1
    try:
        files, failed = check_inputs(args.paths, args.model)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    if len(files) > COLLECTION_FILES and not args.out:
        print(f"error: {len(files)} files: give --out FILE (.csv or .jsonl) so each file's result is kept as it "
              "finishes and a rerun resumes.", file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.config import atomic_path
    from keras_music.progress import Progress
    from keras_music.tagging.streaming import stream_results
    from keras_music.tagging.tagger import Tagger
    from keras_music.tagging.writers import ResultLog, format_results

    try:
        options = {"decoder": args.decoder, "top_k": args.top_k, "precision": args.precision}
        tagger = Tagger.from_preset(preset, **options) if preset else Tagger.from_export(args.model, **options)
        if args.embeddings:
            tagger.check_embeddings()
        layout = tagger.layout(args.per_window, args.embeddings)
        log = ResultLog(args.out, args.format, layout, tagger.identity) if args.out and args.format != "json" else None
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: {error.for_flags(FLAGS) if isinstance(error, ParameterError) else error}", file=sys.stderr)
        return 1
    skipped, tagged, earlier_failures = 0, 0, 0
    if log:
        todo = log.todo(files, args.retry_failed)
        skipped, files = len(files) - len(todo), todo
        earlier_failures = 0 if args.retry_failed else sum(1 for name in log.failed if name not in log.done)
        if skipped:
            print(f"Resuming {args.out}: {skipped} file(s) already there ({len(log.failed)} failed"
                  f"{', retried' if args.retry_failed else ', not retried (--retry-failed)'}).", file=sys.stderr)
    plot_dir = Path(args.plot) if args.plot else None
    if plot_dir:
        plot_dir.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.commonpath([str(f.resolve().parent) for f in files])) if files else Path.cwd()
    results, progress = {}, Progress(len(files))
    stream = log is None and args.format == "jsonl"  # jsonl to stdout: a line per file as it finishes
    try:
        for index, result, reason in stream_results(tagger, files, [str(f) for f in files], args.chunk_seconds,
                                                    args.jobs, args.batch_size, args.embeddings):
            if reason is not None:
                failed.append((str(files[index]), reason))
                if log:
                    log.add_failure(str(files[index]), reason)
            else:
                tagged += 1
                if log:
                    log.add(result)
                elif stream:
                    sys.stdout.write(json.dumps(result.to_record(windows=args.per_window)) + "\n")
                    sys.stdout.flush()
                else:
                    results[index] = result
                if plot_dir:
                    result.plot(plot_dir / plot_name(files[index], root))
            progress.update(files[index].name, failed=reason is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {'finished files are in ' + args.out if log else 'nothing written'}.", file=sys.stderr)
        return 130
    finally:
        if log:
            log.close()
    progress.close()
    if not log and not stream:
        text = format_results([results[i] for i in sorted(results)], layout, args.format)
        if args.out:
            with atomic_path(Path(args.out)) as tmp:
                Path(tmp).write_text(text)
        else:
            sys.stdout.write(text)
    for name, reason in failed:
        print(skipped_line(name, reason), file=sys.stderr)
    resumed = f" ({skipped} already in {args.out})" if skipped else ""
    print(f"Tagged {tagged} file(s) with {tagger.path}; {len(failed)} skipped{resumed}.", file=sys.stderr)
    if earlier_failures:
        print(f"{earlier_failures} file(s) failed in an earlier run and were not retried (error records in "
              f"{args.out}; --retry-failed tries them again).", file=sys.stderr)
    return 1 if failed or earlier_failures or not (tagged or skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
