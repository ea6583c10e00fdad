"""Catalog tagging as an Apache Beam pipeline: `RunInference` over the export TF Serving loads.

    python -m keras_music.beam.tag music/ --model saved_models/emotion_4q --out tags.jsonl \\
        --runner DirectRunner --direct_num_workers 2
    python -m keras_music.beam.tag /mnt/music --model /mnt/models/emotion_4q/1 --out /mnt/tags.jsonl \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp

Audio, `--model` and `--out` are file paths (on a cluster: mounts every worker sees).

Options it does not know are Beam pipeline options. Without `--model` the packaged 4Q model is
used (built on first use, as `predict` does).

    file list -> Reshuffle -> ReadChunks ------------> RunInference(ServeAudioHandler)
                                     |                      -> GroupByKey(file) -> file record
                                     '-> failed (file, reason) ------------------> error record
                                                            -> WriteToText (JSONL or CSV)

`ReadChunks` is `tagging.streaming.read_chunks` (decode, resample, cut long files into the
chunks of `scoring.chunk_plan`); `ServeAudioHandler` is a custom `ModelHandler` because the
stock TensorFlow handler feeds tensors to a Keras model or a signature with one tensor input,
while the export's `serve_audio` signature takes WAV bytes and returns window logits, counts,
embeddings and tag sets' logits; it calls `tagging.Tagger`, as `predict` does, and a batch that fails is
retried element by element so one bad file fails alone. Records are assembled by
`Tagger.result` and written by `tagging.writers.record_text`, so each row equals `predict
--out`'s for the same file and export (rows come in no particular order).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from keras_music.beam import pipeline_options, require_beam, work_list

beam = require_beam()

from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference  # noqa: E402
from keras_music.tf_logging import import_tensorflow

FAILED = "failed"


class ServeAudioHandler(ModelHandler):
    """RunInference's model: an export's `serve_audio` (`tagging.Tagger`), loaded once
    per worker; an example is one chunk (a dict with its WAV bytes), the inference its
    `WindowOutputs`, or an error string. `precision`: as `Tagger`'s (the worker is the pipeline's own
    process)."""

    def __init__(self, model: str, embeddings: bool = False, batch_size: int = 8, decoder: str = "soundfile",
                 precision: str = "float32"):
        super().__init__()
        self.model, self.embeddings, self.batch_size, self.decoder = model, embeddings, batch_size, decoder
        self.precision = precision

    def load_model(self):
        from keras_music.tagging import Tagger

        tagger = Tagger(self.model, decoder=self.decoder, precision=self.precision)
        if self.embeddings:
            tagger.check_embeddings()
        return tagger

    def run_inference(self, batch: Sequence[dict], model, inference_args=None) -> Iterable[PredictionResult]:
        from keras_music.tagging.streaming import failure_reason

        try:
            outputs = model.window_outputs([chunk["wav"] for chunk in batch], embeddings=self.embeddings)
        except Exception as error:
            if len(batch) == 1:
                return [PredictionResult(batch[0], failure_reason(error))]
            return [result for chunk in batch for result in self.run_inference([chunk], model)]
        return [PredictionResult(chunk, output) for chunk, output in zip(batch, outputs)]

    def batch_elements_kwargs(self):
        return {"max_batch_size": self.batch_size}

    def share_model_across_processes(self) -> bool:
        return False


class ReadChunks(beam.DoFn):
    """A file -> its chunks (dicts with the WAV bytes and the windows it keeps), or `(file,
    reason)` on `failed`."""

    def __init__(self, model: str, chunk_seconds: float, decoder: str):
        self.model, self.chunk_seconds, self.decoder = model, chunk_seconds, decoder

    def setup(self):
        from keras_music.tagging import Tagger

        self._tagger = Tagger(self.model, decoder=self.decoder, load=False)  # recipe, window, rate

    def process(self, path: str):
        from keras_music.tagging.streaming import read_chunks

        items = []
        read_chunks(self._tagger, 0, Path(path), self.chunk_seconds, items.append)
        kind, _, value = items[-1]
        if kind == "error":
            yield beam.pvalue.TaggedOutput(FAILED, (path, value))
            return
        num_samples, chunks = value, items[:-1]
        for order, chunk in enumerate(chunks):
            yield {"file": path, "order": order, "chunks": len(chunks), "num_samples": num_samples,
                   "wav": chunk.wav, "samples": chunk.samples, "positions": chunk.positions, "starts": chunk.starts}


class FileRecord(beam.DoFn):
    """A file's scored chunks -> its record line (`tagging.writers.record_text`), or an error record."""

    def __init__(self, model: str, fmt: str, per_window: bool, embeddings: bool, decoder: str, top_k: int = 3):
        self.model, self.fmt, self.per_window, self.embeddings, self.decoder, self.top_k = (
            model, fmt, per_window, embeddings, decoder, top_k)

    def setup(self):
        from keras_music.tagging import Tagger

        self._tagger = Tagger(self.model, decoder=self.decoder, load=False, top_k=self.top_k)
        self._layout = self._tagger.layout(self.per_window, self.embeddings)

    def process(self, keyed):
        import numpy as np

        from keras_music.tagging.results import WindowOutputs
        from keras_music.tagging.streaming import ChunkInput, kept_outputs
        from keras_music.tagging.writers import failure_text, record_text

        path, results = keyed
        results = sorted(results, key=lambda r: r.example["order"])
        tagger = self._tagger
        try:
            parts, starts = [], []
            for result in results:
                if isinstance(result.inference, str):
                    raise ValueError(result.inference)
                chunk = result.example
                parts.append(kept_outputs(ChunkInput(0, b"", chunk["samples"], chunk["positions"], chunk["starts"]),
                                          result.inference))
                starts.append(chunk["starts"])
            record = tagger.result(path, results[0].example["num_samples"], WindowOutputs.join(parts),
                                   np.concatenate(starts))
        except ValueError as error:
            yield failure_text(path, str(error), self.fmt, len(self._layout.header(collection=True)), tagger.identity)
            return
        yield record_text(record, self.fmt, self._layout, tagger.identity)


def build_pipeline(pipeline, files: list[str], model: str, out: str, fmt: str = "jsonl", per_window: bool = False,
                   embeddings: bool = False, chunk_seconds: float = 60.0, batch_size: int = 8,
                   decoder: str = "soundfile", top_k: int = 3, precision: str = "float32"):
    """Add the tagging transforms for `files` to `pipeline`; records go to the one text file `out`."""
    from keras_music.tagging import Tagger
    from keras_music.tagging.writers import csv_text, failure_text

    model = str(Path(model).resolve())
    tagger = Tagger(model, decoder=decoder, load=False, top_k=top_k)
    identity = tagger.identity
    columns = tagger.layout(per_window, embeddings).header(collection=True)
    header = csv_text([columns])[:-1] if fmt == "csv" else None  # WriteToText adds the newline
    chunks = (work_list(pipeline, _todo_path(out), files)
              | "Spread" >> beam.Reshuffle()
              | "ReadChunks" >> beam.ParDo(ReadChunks(model, chunk_seconds, decoder)).with_outputs(
                  FAILED, main="chunks"))
    scored = (chunks.chunks
              | "RunInference" >> RunInference(ServeAudioHandler(model, embeddings, batch_size, decoder, precision))
              | "ByFile" >> beam.Map(_by_file)  # the WAV bytes stay behind: only windows go through the shuffle
              | "Group" >> beam.GroupByKey()
              | "Records" >> beam.ParDo(FileRecord(model, fmt, per_window, embeddings, decoder, top_k)))
    failed = chunks[FAILED] | "FailureRecords" >> beam.MapTuple(
        lambda path, reason: failure_text(path, reason, fmt, len(columns), identity))
    return ((scored, failed)
            | "All" >> beam.Flatten()
            | "Lines" >> beam.Map(lambda text: text.rstrip("\n"))
            | "Write" >> beam.io.WriteToText(out, shard_name_template="", header=header))


def _todo_path(out: str) -> Path:
    """The file list of a run, beside its output (removed when the run ends)."""
    return Path(f"{out}.todo.jsonl")


def _by_file(result: PredictionResult):
    example = {k: v for k, v in result.example.items() if k != "wav"}
    return example["file"], PredictionResult(example, result.inference)


def tag_with_beam(files: list[str], model: str, out: str | Path, pipeline_args: list[str], fmt: str = "jsonl",
                  per_window: bool = False, embeddings: bool = False, chunk_seconds: float = 60.0,
                  batch_size: int = 8, decoder: str = "soundfile", top_k: int = 3, precision: str = "float32") -> None:
    """Run the tagging pipeline (runner and options from `pipeline_args`) and wait for it."""
    from keras_music.tagging import Tagger

    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"the Beam tagger writes jsonl or csv, not {fmt!r} (a .jsonl or .csv --out).")
    tagger = Tagger(model, decoder=decoder, top_k=top_k, precision=precision)  # fail now on bad arguments
    if embeddings:
        tagger.check_embeddings()
    logging.getLogger("apache_beam").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        with beam.Pipeline(options=pipeline_options(pipeline_args)) as pipeline:
            build_pipeline(pipeline, files, str(tagger.path), str(out), fmt, per_window, embeddings, chunk_seconds,
                           batch_size, decoder, top_k, precision)
    finally:
        _todo_path(str(out)).unlink(missing_ok=True)


def main(argv=None) -> int:
    import argparse
    import csv
    import io
    import json
    import sys

    from keras_music.errors import ParameterError
    from keras_music.tagging.inputs import InputError, check_inputs
    from keras_music.tagging.streaming import check_batching
    from keras_music.tagging.tagger import check_options

    parser = argparse.ArgumentParser(prog="python -m keras_music.beam.tag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="Audio files and/or folders (recursive).")
    parser.add_argument("--model", default=None, help="Export folder (as predict's --model). Default: the packaged "
                        "4Q emotion model.")
    parser.add_argument("--out", required=True, help="New output file, .jsonl or .csv: the records predict --out "
                        "writes, one per file (failed files: an error record).")
    parser.add_argument("--runner", default="DirectRunner", help="Beam runner. Default: DirectRunner.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores.")
    parser.add_argument("--embeddings", action="store_true", help="Also output each file's embedding.")
    parser.add_argument("--chunk-seconds", type=float, default=60.0, help="As predict's. Default: 60.")
    parser.add_argument("--batch-size", type=int, default=8, help="Most chunks per serve_audio call. Default: 8.")
    parser.add_argument("--decoder", choices=["soundfile", "tfio"], default="soundfile")
    parser.add_argument("--top-k", type=int, default=3, help="As predict's: names per tag group. Default: 3.")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="As predict's. Default: auto.")
    args, beam_args = parser.parse_known_args(argv)
    fmt = {".jsonl": "jsonl", ".csv": "csv"}.get(Path(args.out).suffix.lower())
    if fmt is None:
        parser.error(f"--out {args.out}: give a .jsonl or .csv file.")
    try:
        check_batching(args.chunk_seconds, args.batch_size)
        check_options(top_k=args.top_k)  # the Tagger's own check, before any model loads
    except ParameterError as error:
        parser.error(error.for_flags({"chunk_seconds": "--chunk-seconds", "batch_size": "--batch-size",
                                      "top_k": "--top-k"}))
    if Path(args.out).exists():
        parser.error(f"--out {args.out} exists; the pipeline writes a new file (give another --out).")
    try:
        files, failed = check_inputs(args.paths, args.model)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.model is None:
            from keras_music.tagging.presets import installed

            args.model = installed()
        tag_with_beam([str(f) for f in files], args.model, args.out, ["--runner", args.runner, *beam_args], fmt,
                      args.per_window, args.embeddings, args.chunk_seconds, args.batch_size, args.decoder, args.top_k,
                      args.precision)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    text = Path(args.out).read_text(encoding="utf-8")
    records = ([json.loads(line) for line in text.splitlines() if line.strip()] if fmt == "jsonl"
               else list(csv.DictReader(io.StringIO(text))))
    errors = {r["file"]: r["error"] for r in records if r.get("error")}
    failed.extend(errors.items())
    for name, reason in failed:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    tagged = len({r["file"] for r in records} - set(errors))
    print(f"Tagged {tagged} file(s) with {args.model} on {args.runner}; {len(failed)} skipped. Records: {args.out}",
          file=sys.stderr)
    return 1 if failed or not tagged else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
