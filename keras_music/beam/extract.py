"""Feature extraction as an Apache Beam pipeline: the same store as `keras_music.extract`.

    python -m keras_music.extract music/ --out stores/music --runner DirectRunner --direct_num_workers 2 \\
        --direct_running_mode multi_processing

The launcher lists the audio (a local folder, or any filesystem Beam reads, e.g. `gs://`),
opens the store and plans the run with the local extractor's own rule
(`extraction.plan_extraction`: clips already in the manifest are skipped, duplicate ids
fail). The pipeline then

    todo list -> Reshuffle -> ExtractClips ---> clips -> GroupByKey (about a shard per key)
                                     |                  -> WriteShards (pending shard files)
                                     '-> failed (file, reason) ---------> commit (one step)

`ExtractClips` calls `extraction.extract_clip`, the local path's function, so records are
the same to the bit; a file that cannot be used goes to the `failed` output with its
reason and never stops the pipeline. Workers write shards under pending names; one final
step (`FeatureStore.commit_shards`) numbers them and updates the manifest once, and writes
the failures to `beam-failures.jsonl` in the store. A pipeline that dies before that step
leaves only pending files, which the next run deletes, then extracts those clips again.

The store is written through ordinary file paths: on a cluster, a folder every worker and
the launcher mount (NFS, GCS FUSE). Writing a store straight to `gs://` is not supported.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import zlib
from pathlib import Path

from keras_music.beam import pipeline_options, require_beam, work_list
from keras_music.beam.files import list_audio, local_copy
from keras_music.config import FeatureRecipe, atomic_path, config_to_dict
from keras_music.data.extraction import ExtractionSummary, extract_clip, plan_extraction
from keras_music.data.store import PENDING_SUFFIX, SHARD_DIR, FeatureStore, write_records
from keras_music.remote import has_scheme

beam = require_beam()

logger = logging.getLogger("keras_music.beam")

FAILED = "failed"
FAILURES_FILE = "beam-failures.jsonl"  # (file, reason) of the last Beam run, written by its commit step
TODO_FILE = "beam-todo.jsonl"  # the run's (source, clip_id) list, read by the pipeline; removed after it


class ExtractClips(beam.DoFn):
    """`(source, clip_id)` -> `(manifest entry, serialized example)`, or `(source, reason)` on `failed`."""

    def __init__(self, recipe: dict, decoder: str):
        self.recipe, self.decoder = recipe, decoder

    def setup(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._recipe = FeatureRecipe.from_dict(self.recipe, source="pipeline recipe")

    def process(self, item):
        source, clip_id = item
        # A remote file that cannot be read raises here, so Beam retries it (storage errors pass);
        # what the file itself holds (undecodable, silent...) is its failure, and the pipeline goes on.
        with local_copy(source) as path:
            try:
                entry, record = extract_clip(path, clip_id, self._recipe, self.decoder)
            except Exception as error:
                reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
                yield beam.pvalue.TaggedOutput(FAILED, (source, reason.replace(str(path), source)))
                return
        yield {**entry, "source": source}, record


class WriteShards(beam.DoFn):
    """A group of clips -> pending shard files of at most `shard_size` clips in the store, in file
    order; yields `(file name, manifest entries)` per shard."""

    def __init__(self, store: str, shard_size: int):
        self.store, self.shard_size = store, shard_size

    def process(self, keyed):
        _, clips = keyed
        clips = sorted(clips, key=lambda clip: clip[0]["source"])  # about a shard's worth per key
        for batch in _batches(clips, self.shard_size):
            name = f"beam-{uuid.uuid4().hex}{PENDING_SUFFIX}"
            write_records(Path(self.store) / SHARD_DIR / name, [record for _, record in batch])
            yield name, [entry for entry, _ in batch]


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def commit(written: list, failures: list, store: str) -> int:
    """The pipeline's last step, run once: commit the pending shards, record the failures."""
    root = Path(store)
    store_ = FeatureStore(root)
    recorded = {entry["source"] for entry in store_.manifest()}
    pending = []
    for name, entries in sorted(written, key=lambda shard: shard[1][0]["source"]):  # numbered by first file
        if not (root / SHARD_DIR / name).is_file() and all(e["source"] in recorded for e in entries):
            continue  # committed by an earlier attempt of this step (Beam retries a failed bundle)
        pending.append((root / SHARD_DIR / name, entries))
    store_.commit_shards(pending)
    keep = {name for name, _ in written}
    for stray in (root / SHARD_DIR).glob(f"beam-*{PENDING_SUFFIX}"):  # a retried bundle's first attempt
        if stray.name not in keep:
            stray.unlink(missing_ok=True)
    lines = "".join(json.dumps({"file": file, "reason": reason}) + "\n" for file, reason in sorted(failures))
    with atomic_path(root / FAILURES_FILE) as tmp:
        tmp.write_text(lines)
    return sum(len(entries) for _, entries in pending)


def shard_keys(count: int, shard_size: int) -> int:
    """How many groups clips are spread over before they are cut into shards: about one per
    shard, so that workers write shards in parallel and a group stays small."""
    return max(1, min(4096, count // max(1, shard_size)))


def build_pipeline(pipeline, todo: list[tuple[str, str]], store: str, recipe: FeatureRecipe,
                   shard_size: int = 64, decoder: str = "soundfile"):
    """Add the extraction transforms for `todo` ((source, clip_id) pairs) to `pipeline`."""
    keys = shard_keys(len(todo), shard_size)
    results = (work_list(pipeline, Path(store) / TODO_FILE, todo)
               | "Spread" >> beam.Reshuffle()
               | "Extract" >> beam.ParDo(ExtractClips(config_to_dict(recipe), decoder)).with_outputs(
                   FAILED, main="clips"))
    written = (results.clips
               | "Key" >> beam.Map(lambda clip: (zlib.crc32(clip[0]["clip_id"].encode()) % keys, clip)
                                  ).with_output_types(beam.typehints.KV[int, beam.typehints.Any])
               | "Group" >> beam.GroupByKey()
               | "WriteShards" >> beam.ParDo(WriteShards(store, shard_size))
               | "Written" >> beam.combiners.ToList())
    failures = results[FAILED] | "Failures" >> beam.combiners.ToList()
    return (written
            | "Commit" >> beam.Map(commit, failures=beam.pvalue.AsSingleton(failures), store=store))


def extract_with_beam(audio_dir: str, out: str | Path, recipe: FeatureRecipe, pipeline_args: list[str],
                      shard_size: int = 64, decoder: str = "soundfile", limit: int | None = None,
                      sources: list[str] | None = None) -> ExtractionSummary:
    """Run the extraction pipeline (its runner and options from `pipeline_args`) and wait for it.

    Returns the same summary as `extract_folder`: files found, already stored, written, and
    failed with the reason (the launcher's duplicates and the pipeline's `failed` output).
    `sources`: `list_audio(audio_dir)` when the caller has listed the folder already.
    """
    if has_scheme(out):
        raise ValueError(f"--out {out}: the Beam extractor writes the store through file paths (a folder every "
                         "worker mounts); a store on a remote filesystem is not supported.")
    options = pipeline_options(pipeline_args)  # a mistyped option fails before anything is written
    sources = list_audio(str(audio_dir), options) if sources is None else sources
    store = FeatureStore(out)
    store.open_for_writing(recipe)
    (store.root / FAILURES_FILE).unlink(missing_ok=True)
    todo, summary = plan_extraction(sources, store.manifest())
    todo = todo[:limit]
    if not todo:
        return summary
    logger.info("Beam: %d files to extract (%d already stored) into %s", len(todo), summary.skipped, out)
    logging.getLogger("apache_beam").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        with beam.Pipeline(options=options) as pipeline:
            build_pipeline(pipeline, todo, str(Path(out).resolve()), recipe, shard_size, decoder)
    finally:
        (store.root / TODO_FILE).unlink(missing_ok=True)
    failures_path = store.root / FAILURES_FILE
    failures = [json.loads(line) for line in failures_path.read_text().splitlines()] if failures_path.is_file() else []
    summary.failed.extend((f["file"], f["reason"]) for f in failures)
    stored = {entry["source"] for entry in store.manifest()}
    summary.written = sum(source in stored for source, _ in todo)
    return summary

