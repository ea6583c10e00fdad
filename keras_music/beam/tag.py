"""Catalog tagging as an Apache Beam pipeline: `RunInference` over the export TF Serving loads.

    python -m keras_music.beam.tag music/ --model saved_models/emotion_4q --out tags/ \\
        --runner DirectRunner --direct_num_workers 2
    python -m keras_music.beam.tag /mnt/music --model /mnt/models/emotion_4q/1 --out gs://bucket/tags/ \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp

Audio and `--model` are file paths (on a cluster: mounts every worker sees); `--out` is a
folder, local or on object storage (Beam's filesystems), of record shards committed as the
run goes (`beam.shards`). The same command run again resumes: files already recorded there
are skipped (failed ones too, unless `--retry-failed`), the rest go into new shards.

Options it does not know are Beam pipeline options. Without `--model` the packaged 4Q model is
used (built on first use, as `predict` does).

    file list -> Reshuffle -> ReadFile -> RunInference(ServeAudioHandler) -> FileRecord -> WriteShards
                                 '-> failed (file, reason) -> error record ----------------> WriteShards

`ReadFile` is `tagging.streaming.read_chunks` (decode, resample, cut long files into the
chunks of `scoring.chunk_plan`), all of a file's chunks in one element; `ServeAudioHandler`
is a custom `ModelHandler` because the stock TensorFlow handler feeds tensors to a Keras
model or a signature with one tensor input, while the export's `serve_audio` signature
takes WAV bytes and returns window logits, counts, embeddings and tag sets' logits; it
calls `tagging.Tagger`, as `predict` does, and a call that fails is retried chunk by chunk
so one bad file fails alone. No shuffle follows the inference, so records are written while
the run goes on. Records are assembled by `Tagger.result` and written by
`tagging.writers.record_text`, so each row equals `predict --out`'s for the same file and
export (rows come in no particular order).
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
FORMATS = ("jsonl", "csv")


class ServeAudioHandler(ModelHandler):
    """RunInference's model: an export's `serve_audio` (`tagging.Tagger`), loaded once per worker.

    An example is one file (`ReadFile`: its chunks' WAV bytes), the inference the `WindowOutputs`
    of each of its chunks, or an error string. The chunks of a batch of files go through
    serve_audio `batch_size` at a time; a call that fails is retried chunk by chunk, so one bad
    file fails alone. A file stays one element from reading to its record, with no shuffle in
    between, so records reach the output (and are committed) while the run goes on.
    `precision`: as `Tagger`'s (the worker is the pipeline's own process)."""

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

    def score(self, model, wavs: list[bytes]) -> list:
        """Each WAV's `WindowOutputs`, or its error string."""
        from keras_music.tagging.streaming import failure_reason

        try:
            return model.window_outputs(wavs, embeddings=self.embeddings)
        except Exception as error:
            if len(wavs) == 1:
                return [failure_reason(error)]
            return [output for wav in wavs for output in self.score(model, [wav])]

    def run_inference(self, batch: Sequence[dict], model, inference_args=None) -> Iterable[PredictionResult]:
        chunks = [(i, chunk["wav"]) for i, element in enumerate(batch) for chunk in element["chunks"]]
        outputs: list[list] = [[] for _ in batch]
        for start in range(0, len(chunks), self.batch_size):
            part = chunks[start:start + self.batch_size]
            for (i, _), output in zip(part, self.score(model, [wav for _, wav in part])):
                outputs[i].append(output)
        results = []
        for element, scored in zip(batch, outputs):
            error = next((output for output in scored if isinstance(output, str)), None)
            kept = {**element, "chunks": [{k: v for k, v in c.items() if k != "wav"} for c in element["chunks"]]}
            results.append(PredictionResult(kept, error if error is not None else scored))
        return results

    def batch_elements_kwargs(self):
        return {"max_batch_size": self.batch_size}

    def share_model_across_processes(self) -> bool:
        return False


class ReadFile(beam.DoFn):
    """A file -> one element: its chunks (WAV bytes and the windows each keeps) and its length in
    samples; or `(file, reason)` on `failed`."""

    def __init__(self, model: str, chunk_seconds: float, decoder: str):
        self.model, self.chunk_seconds, self.decoder = model, chunk_seconds, decoder

    def setup(self):
        from keras_music.tagging import Tagger

        self._tagger = Tagger(self.model, decoder=self.decoder, load=False)  # recipe, window, rate

    def process(self, path: str):
        from keras_music.beam.files import local_copy
        from keras_music.tagging.streaming import read_chunks

        items, local = [], path
        try:
            with local_copy(path) as copy:  # a remote file (gs://...) is decoded from a temporary copy
                local = str(copy)
                read_chunks(self._tagger, 0, copy, self.chunk_seconds, items.append)
        except Exception as error:  # the copy failed: the file is gone, or the filesystem refused
            items.append(("error", 0, f"{path}: could not be read ({error})"))
        kind, _, value = items[-1]
        if kind == "error":
            yield beam.pvalue.TaggedOutput(FAILED, (path, value.replace(local, path)))  # name the file, not its copy
            return
        yield {"file": path, "num_samples": value,
               "chunks": [{"wav": c.wav, "samples": c.samples, "positions": c.positions, "starts": c.starts}
                          for c in items[:-1]]}


class FileRecord(beam.DoFn):
    """A file's scored chunks -> its record line (`tagging.writers.record_text`), or an error record."""

    def __init__(self, model: str, fmt: str, per_window: bool, embeddings: bool, decoder: str, top_k: int = 3):
        self.model, self.fmt, self.per_window, self.embeddings, self.decoder, self.top_k = (
            model, fmt, per_window, embeddings, decoder, top_k)

    def setup(self):
        from keras_music.tagging import Tagger

        self._tagger = Tagger(self.model, decoder=self.decoder, load=False, top_k=self.top_k)
        self._layout = self._tagger.layout(self.per_window, self.embeddings)

    def process(self, result: PredictionResult):
        import numpy as np

        from keras_music.tagging.results import WindowOutputs
        from keras_music.tagging.streaming import ChunkInput, kept_outputs
        from keras_music.tagging.writers import failure_text, record_text

        element, tagger = result.example, self._tagger
        path = element["file"]
        try:
            if isinstance(result.inference, str):
                raise ValueError(result.inference)
            parts = [kept_outputs(ChunkInput(0, b"", c["samples"], c["positions"], c["starts"]), output)
                     for c, output in zip(element["chunks"], result.inference)]
            record = tagger.result(path, element["num_samples"], WindowOutputs.join(parts),
                                   np.concatenate([c["starts"] for c in element["chunks"]]))
        except ValueError as error:
            yield failure_text(path, str(error), self.fmt, len(self._layout.header(collection=True)),
                               tagger.identity).rstrip("\n")
            return
        yield record_text(record, self.fmt, self._layout, tagger.identity).rstrip("\n")


def build_pipeline(pipeline, files: list[str], model: str, out: str, fmt: str = "jsonl", per_window: bool = False,
                   embeddings: bool = False, chunk_seconds: float = 60.0, batch_size: int = 8,
                   decoder: str = "soundfile", top_k: int = 3, precision: str = "float32",
                   shard_records: int = 256, shard_seconds: float = 60.0):
    """Add the tagging transforms for `files` to `pipeline`; records go to new shards of the folder `out`
    (`beam.shards`: each committed whole, every `shard_records` records or `shard_seconds`)."""
    from keras_music.beam.shards import WriteShards
    from keras_music.tagging import Tagger
    from keras_music.tagging.writers import csv_text, failure_text

    model = str(Path(model).resolve())
    tagger = Tagger(model, decoder=decoder, load=False, top_k=top_k)
    identity = tagger.identity
    columns = tagger.layout(per_window, embeddings).header(collection=True)
    header = csv_text([columns]).rstrip("\n") if fmt == "csv" else None
    files = (work_list(pipeline, todo_path(out), files)
             | "Spread" >> beam.Reshuffle()
             | "ReadFile" >> beam.ParDo(ReadFile(model, chunk_seconds, decoder)).with_outputs(FAILED, main="files"))
    scored = (files.files
              | "RunInference" >> RunInference(ServeAudioHandler(model, embeddings, batch_size, decoder, precision))
              | "Records" >> beam.ParDo(FileRecord(model, fmt, per_window, embeddings, decoder, top_k)))
    failed = files[FAILED] | "FailureRecords" >> beam.MapTuple(
        lambda path, reason: failure_text(path, reason, fmt, len(columns), identity).rstrip("\n"))
    # Each branch writes its own shards: a Flatten before one writer would end the fused stage
    # there, so the DirectRunner would hold every record until all files were scored.
    return (scored | "Write" >> beam.ParDo(WriteShards(out, fmt, header, shard_records, shard_seconds)),
            failed | "WriteFailures" >> beam.ParDo(WriteShards(out, fmt, header, shard_records, shard_seconds)))


def todo_path(out: str) -> str:
    """The file list of a run, in its output folder (workers read it; removed when the run ends)."""
    from keras_music.beam.shards import TEMPORARY_PREFIX, join

    return join(out, f"{TEMPORARY_PREFIX}todo.jsonl")


def tag_with_beam(files: list[str], model: str, out: str | Path, pipeline_args: list[str], fmt: str = "jsonl",
                  per_window: bool = False, embeddings: bool = False, chunk_seconds: float = 60.0,
                  batch_size: int = 8, decoder: str = "soundfile", top_k: int = 3, precision: str = "float32",
                  shard_records: int = 256, shard_seconds: float = 60.0) -> None:
    """Run the tagging pipeline for `files` (runner and options from `pipeline_args`) and wait for it;
    records go to new shards of the folder `out`."""
    from apache_beam.io.filesystems import FileSystems

    from keras_music.tagging import Tagger

    if fmt not in FORMATS:
        raise ValueError(f"the Beam tagger writes {' or '.join(FORMATS)}, not {fmt!r}.")
    tagger = Tagger(model, decoder=decoder, top_k=top_k, precision=precision)  # fail now on bad arguments
    if embeddings:
        tagger.check_embeddings()
    logging.getLogger("apache_beam").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        with beam.Pipeline(options=pipeline_options(pipeline_args)) as pipeline:
            build_pipeline(pipeline, files, str(tagger.path), str(out), fmt, per_window, embeddings, chunk_seconds,
                           batch_size, decoder, top_k, precision, shard_records, shard_seconds)
    finally:
        todo = todo_path(str(out))
        if FileSystems.exists(todo):
            FileSystems.delete([todo])


def main(argv=None) -> int:
    import argparse
    import sys

    from keras_music.errors import ParameterError
    from keras_music.tagging.exports import resolve_export
    from keras_music.tagging.inputs import InputError, check_inputs
    from keras_music.tagging.streaming import check_batching
    from keras_music.tagging.tagger import check_options

    parser = argparse.ArgumentParser(prog="python -m keras_music.beam.tag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="Audio files and/or folders (recursive).")
    parser.add_argument("--model", default=None, help="Export folder (as predict's --model). Default: the packaged "
                        "4Q emotion model.")
    parser.add_argument("--out", required=True, help="Output folder (local, or gs://bucket/path/): shards of the "
                        "records predict --out writes, one per file (failed files: an error record). The same "
                        "command run again resumes: files already there are skipped.")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="Records as JSON lines or CSV rows. "
                        "Default: jsonl.")
    parser.add_argument("--retry-failed", action="store_true", help="Resuming: tag the failed files again.")
    parser.add_argument("--runner", default="DirectRunner", help="Beam runner. Default: DirectRunner.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores.")
    parser.add_argument("--embeddings", action="store_true", help="Also output each file's embedding.")
    parser.add_argument("--chunk-seconds", type=float, default=60.0, help="As predict's. Default: 60.")
    parser.add_argument("--batch-size", type=int, default=8, help="Most chunks per serve_audio call. Default: 8.")
    parser.add_argument("--shard-records", type=int, default=256, help="A shard is committed every this many "
                        "records (and at least every minute): at most this much work per worker is lost to a "
                        "crash. Default: 256.")
    parser.add_argument("--decoder", choices=["soundfile", "tfio"], default="soundfile")
    parser.add_argument("--top-k", type=int, default=3, help="As predict's: names per tag group. Default: 3.")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="As predict's. Default: auto.")
    args, beam_args = parser.parse_known_args(argv)
    if Path(args.out).suffix.lower() in (".jsonl", ".csv", ".json"):
        parser.error(f"--out {args.out}: give a folder (for example tags/ or gs://bucket/tags/): the records go "
                     "into shards there, so that a rerun resumes; --format picks jsonl or csv.")
    if args.shard_records < 1:
        parser.error(f"--shard-records {args.shard_records}: expected a whole number of at least 1.")
    try:
        check_batching(args.chunk_seconds, args.batch_size)
        check_options(top_k=args.top_k)  # the Tagger's own check, before any model loads
    except ParameterError as error:
        parser.error(error.for_flags({"chunk_seconds": "--chunk-seconds", "batch_size": "--batch-size",
                                      "top_k": "--top-k"}))
    from keras_music.remote import has_scheme

    local_paths = [p for p in args.paths if not has_scheme(p)]
    remote_paths = [p for p in args.paths if has_scheme(p)]
    files, failed = [], []
    try:
        if local_paths:
            files, failed = check_inputs(local_paths, args.model)
        elif args.model is not None:
            resolve_export(args.model, parameter="model")
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    except ParameterError as error:
        print(f"error: {error.for_flags({'model': '--model'})}", file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from apache_beam.io.filesystems import FileSystems

    from keras_music.beam.files import list_audio
    from keras_music.beam.shards import read_shards
    from keras_music.tagging import Tagger

    try:
        options = pipeline_options(["--runner", args.runner, *beam_args])
        FileSystems.set_options(options)  # credentials and the like, for listing and reading the output here
        for remote in remote_paths:  # gs://bucket/music/ and other Beam filesystems: listed through Beam
            files += list_audio(remote, options)
        if args.model is None:
            from keras_music.tagging.presets import installed

            args.model = installed()
        identity = Tagger(args.model, load=False).identity
        earlier = read_shards(args.out, args.format)
        if earlier.model is not None and earlier.model != identity:
            raise ValueError(f"--out {args.out} holds records of model {earlier.model}, this run uses {identity}; "
                             "give another --out.")
        names = list(dict.fromkeys(str(f) for f in files))
        todo = [n for n in names if n not in earlier.done and (args.retry_failed or n not in earlier.failed)]
        if earlier.shards:
            print(f"Resuming {args.out}: {len(names) - len(todo)} of {len(names)} file(s) already there "
                  f"({len(earlier.failed)} failed{', retried' if args.retry_failed else ', not retried (--retry-failed)'}"
                  f"); {len(todo)} to tag.", file=sys.stderr)
        if todo:
            tag_with_beam(todo, args.model, args.out, ["--runner", args.runner, *beam_args], args.format,
                          args.per_window, args.embeddings, args.chunk_seconds, args.batch_size, args.decoder,
                          args.top_k, args.precision, args.shard_records)
        final = read_shards(args.out, args.format)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    wanted = set(names)
    errors = {name: reason for name, reason in final.failed.items() if name in wanted}
    failed.extend(errors.items())
    for name, reason in failed:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    tagged = len(wanted & set(final.done))
    print(f"Tagged {tagged} file(s) with {args.model} on {args.runner}; {len(failed)} skipped. Records: "
          f"{final.shards} shard(s) in {args.out}.", file=sys.stderr)
    return 1 if failed or not tagged else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
