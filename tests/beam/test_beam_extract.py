"""The Beam extraction pipeline (DirectRunner) builds the same store as the local extractor."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("apache_beam", reason='the Beam pipelines need apache-beam: pip install "keras_music[beam]"')

import tensorflow as tf  # noqa: E402
from apache_beam.io.filesystem import BeamIOError, FileMetadata, MatchResult  # noqa: E402
from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402

from keras_music.beam.extract import FAILURES_FILE, extract_with_beam  # noqa: E402
from keras_music.config import FeatureRecipe  # noqa: E402
from keras_music.data.extraction import extract_folder, find_audio  # noqa: E402
from keras_music.data.store import FeatureStore  # noqa: E402
from tests.conftest import copy_shared_audio  # noqa: E402

# Beam 2.77's DirectRunner first tries its Prism runner, downloading it from GitHub; tests may use
# loopback only, so it is pointed at no binary and falls back to its in-process FnApiRunner.
DIRECT = ["--runner", "DirectRunner", "--prism_location", "/nonexistent/prism", "--direct_num_workers", "2",
          "--direct_running_mode", "multi_threading"]
# Two worker processes: records written in other processes must still be the same bytes.
DIRECT_PROCESSES = [*DIRECT[:-1], "multi_processing"]


@pytest.fixture
def audio_folder(tmp_path, audio_dir):
    """The shared clips plus, in a sub-folder, one corrupt and one empty file."""
    folder = copy_shared_audio(audio_dir, tmp_path / "audio")
    (folder / "bad" / "empty.wav").write_bytes(b"")
    return folder


def records(store: FeatureStore) -> dict[str, bytes]:
    """clip_id -> the serialized record, as stored."""
    out = {}
    for shard in store.recorded_shards():
        for record in tf.data.TFRecordDataset([str(shard)]).as_numpy_iterator():
            clip_id = tf.train.Example.FromString(record).features.feature["clip_id"].bytes_list.value[0].decode()
            assert clip_id not in out, f"{clip_id} stored twice"
            out[clip_id] = record
    return out


def entries(store: FeatureStore) -> dict[str, dict]:
    return {e["clip_id"]: {k: v for k, v in e.items() if k != "shard"} for e in store.manifest()}


def test_beam_store_equals_the_local_store_and_reports_bad_files(audio_folder, tmp_path):
    local = extract_folder(audio_folder, tmp_path / "local", workers=1, shard_size=3)
    summary = extract_with_beam(str(audio_folder), tmp_path / "beam", FeatureRecipe(), DIRECT_PROCESSES,
                                shard_size=3)

    assert (summary.found, summary.written, summary.skipped) == (9, 7, 0) == (local.found, local.written, 0)
    assert dict(summary.failed) == dict(local.failed)  # same files, same reasons
    reasons = dict(summary.failed)
    assert "cannot decode" in reasons[str(audio_folder / "bad" / "corrupt.mp3")]
    assert "empty file" in reasons[str(audio_folder / "bad" / "empty.wav")]
    side_output = [json.loads(line) for line in (tmp_path / "beam" / FAILURES_FILE).read_text().splitlines()]
    assert {(f["file"], f["reason"]) for f in side_output} == set(summary.failed)

    local_store, beam_store = FeatureStore(tmp_path / "local"), FeatureStore(tmp_path / "beam")
    assert beam_store.recipe == local_store.recipe and beam_store.features == local_store.features
    assert records(beam_store) == records(local_store)  # same clip ids, same bytes
    assert entries(beam_store) == entries(local_store)
    assert not list((tmp_path / "beam" / "shards").glob("*.pending"))
    # train reads it as it reads the local store
    parsed = {c["clip_id"].decode(): c["mel"] for c in beam_store.dataset().as_numpy_iterator()}
    assert len(parsed) == 7


def test_beam_rerun_skips_stored_clips_and_finishes_a_local_store(audio_folder, tmp_path):
    out = tmp_path / "store"
    extract_folder(audio_folder, out, workers=1, shard_size=2, limit=5)  # a local run cut short
    stored = len(FeatureStore(out).manifest())
    assert 0 < stored < 7
    first = extract_with_beam(str(audio_folder), out, FeatureRecipe(), DIRECT, shard_size=2)
    assert (first.skipped, first.written, len(first.failed)) == (stored, 7 - stored, 2)
    again = extract_with_beam(str(audio_folder), out, FeatureRecipe(), DIRECT, shard_size=2)
    assert (again.skipped, again.written) == (7, 0)
    extract_folder(audio_folder, tmp_path / "reference", workers=1)
    assert records(FeatureStore(out)) == records(FeatureStore(tmp_path / "reference"))


def test_a_retried_commit_step_keeps_the_store_as_committed(audio_folder, tmp_path):
    """Beam may run the commit step again after a failure; shards already committed are skipped."""
    from keras_music.beam.extract import commit
    from keras_music.data.extraction import extract_clip
    from keras_music.data.store import PENDING_SUFFIX, write_records

    store = FeatureStore(tmp_path / "store")
    store.open_for_writing(FeatureRecipe())
    paths = sorted(p for p in audio_folder.glob("*") if p.is_file())[:2]
    written = []
    for index, path in enumerate(paths):
        entry, record = extract_clip(path, path.stem, FeatureRecipe())
        name = f"beam-{index}{PENDING_SUFFIX}"
        write_records(store.root / "shards" / name, [record])
        written.append((name, [entry]))
    assert commit(written, [], str(store.root)) == 2
    manifest = (store.root / "manifest.jsonl").read_text()
    assert commit(written, [], str(store.root)) == 0  # the retry: nothing pending, nothing changed
    assert (store.root / "manifest.jsonl").read_text() == manifest and len(store.recorded_shards()) == 2


def test_a_mistyped_option_is_an_error_not_a_silent_default(audio_folder, tmp_path):
    with pytest.raises(ValueError, match="unknown option.s. --shard_size"):
        extract_with_beam(str(audio_folder), tmp_path / "store", FeatureRecipe(), [*DIRECT, "--shard_size", "3"])
    assert not (tmp_path / "store").exists()


class FolderBehindAScheme(LocalFileSystem):
    """`kmtest://<absolute path>`: a local folder behind a URL scheme, so the remote-folder code
    (Beam's `FileSystems.match`) runs without a network. Beam finds filesystems by subclass."""

    options_seen = []  # the pipeline options Beam built each instance with

    def __init__(self, pipeline_options):
        super().__init__(pipeline_options)
        FolderBehindAScheme.options_seen.append(pipeline_options)

    @classmethod
    def scheme(cls):
        return "kmtest"

    def match(self, patterns, limits=None):
        results = super().match([pattern.replace("kmtest://", "/", 1) for pattern in patterns], limits)
        return [MatchResult(result.pattern, [FileMetadata("kmtest://" + m.path[1:], m.size_in_bytes)
                                             for m in result.metadata_list]) for result in results]


def test_dry_run_lists_a_remote_folder_through_beam(audio_folder, tmp_path, capsys):
    from keras_music import extract

    remote = "kmtest://" + str(audio_folder).lstrip("/")
    status = extract.main([remote, "--out", str(tmp_path / "store"), "--dry-run", "--runner", "DirectRunner",
                           "--s3_region_name", "test-region"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines == [f"extract {remote}/{path.relative_to(audio_folder)}" for path in find_audio(audio_folder)]
    assert len(lines) == 9 and not (tmp_path / "store").exists()
    # the command's Beam options (credentials, hosts) reach the filesystem that lists the folder
    assert FolderBehindAScheme.options_seen[-1].get_all_options()["s3_region_name"] == "test-region"


class UnreadableScheme(LocalFileSystem):
    """`kmdown://...`: a remote filesystem that refuses to list (as S3 does without credentials)."""

    @classmethod
    def scheme(cls):
        return "kmdown"

    def match(self, patterns, limits=None):
        raise BeamIOError("Match operation failed", {pattern: ValueError("no credentials") for pattern in patterns})


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_remote_folder_beam_cannot_list_is_a_clear_error(tmp_path, capsys, dry_run):
    from keras_music import extract

    status = extract.main(["kmdown://bucket/music", "--out", str(tmp_path / "store"), "--runner", "DirectRunner"]
                          + (["--dry-run"] if dry_run else []))
    err = capsys.readouterr().err
    assert status == 1
    assert "error: kmdown://bucket/music: Beam could not list this folder" in err and "no credentials" in err, err
    assert "Traceback" not in err and not (tmp_path / "store").exists()
