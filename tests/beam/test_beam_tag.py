"""Catalog tagging on Beam (RunInference, DirectRunner) writes the rows `predict --out` writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason='the Beam pipelines need apache-beam: pip install "keras_music[beam]"')

import soundfile  # noqa: E402

from keras_music.audio.decoding import decode_audio  # noqa: E402
from tests.beam.test_beam_extract import DIRECT, DIRECT_PROCESSES  # noqa: E402
from tests.conftest import copy_shared_audio  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def predict(*args, module="keras_music.predict"):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=REPO)


def beam_tag(*args):
    return predict(*args, *DIRECT, module="keras_music.beam.tag")


@pytest.fixture(scope="module")
def catalog(audio_dir, tmp_path_factory):
    """The shared clips, a 130 s file (scored in overlapping chunks), a corrupt and an empty file."""
    folder = copy_shared_audio(audio_dir, tmp_path_factory.mktemp("catalog"))
    samples, rate = decode_audio(next(p for p in sorted(audio_dir.iterdir()) if p.suffix == ".wav"))
    soundfile.write(folder / "long.flac", np.tile(samples, int(np.ceil(130 * rate / len(samples))))[: 130 * rate],
                    rate)
    (folder / "bad" / "empty.wav").write_bytes(b"")
    return folder


def jsonl(path: Path) -> dict[str, dict]:
    return {r["file"]: r for r in map(json.loads, path.read_text().splitlines())}


def shard_records(folder: Path) -> dict[str, dict]:
    """Every record of the Beam tagger's shards in `folder`, by file; a file recorded twice fails the test."""
    records = [json.loads(line) for shard in sorted(folder.glob("part-*.jsonl"))
               for line in shard.read_text().splitlines()]
    by_file = {r["file"]: r for r in records}
    assert len(by_file) == len(records), "a file was recorded twice"
    return by_file


@pytest.fixture(scope="module")
def predicted(export, catalog, tmp_path_factory) -> dict[str, dict]:
    """`predict --embeddings --out X.jsonl` over the catalog: the records to match."""
    out = tmp_path_factory.mktemp("predicted") / "local.jsonl"
    local = predict(catalog, "--model", export, "--embeddings", "--out", out)
    assert local.returncode == 1, local.stderr  # the two bad files
    return jsonl(out)


@pytest.mark.slow
def test_runinference_rows_equal_predict_rows(export, catalog, predicted, tmp_path):
    beam = beam_tag(catalog, "--model", export, "--embeddings", "--out", tmp_path / "beam")
    assert beam.returncode == 1, beam.stderr
    assert "Tagged 8 file(s)" in beam.stderr and "2 skipped" in beam.stderr

    got = shard_records(tmp_path / "beam")
    assert set(got) == set(predicted) and len(got) == 10
    for name, record in predicted.items():
        assert got[name].keys() == record.keys(), name
        assert got[name]["model"] == record["model"]
        if "error" in record:
            assert got[name]["error"] == record["error"]
            continue
        assert got[name]["tags"] == record["tags"] and got[name]["seconds"] == record["seconds"]
        np.testing.assert_allclose(list(got[name]["probabilities"].values()),
                                   list(record["probabilities"].values()), atol=1e-6)
        np.testing.assert_allclose(got[name]["embedding"], record["embedding"], atol=1e-6)
    assert got[str(catalog / "long.flac")]["seconds"] == 130.0


@pytest.mark.slow
def test_runinference_csv_has_predicts_columns_and_values(export, catalog, predicted, tmp_path):
    from keras_music.tagging import Tagger

    beam = beam_tag(catalog, "--model", export, "--format", "csv", "--out", tmp_path / "beam")
    assert beam.returncode == 1, beam.stderr
    tagger = Tagger(export, load=False)
    labels = tagger.labels
    rows = {}
    for shard in sorted((tmp_path / "beam").glob("part-*.csv")):
        header, *lines = csv.reader(shard.open(newline=""))
        assert header == tagger.layout().header(collection=True)  # predict --out X.csv's columns, in every shard
        rows.update({row[0]: dict(zip(header, row)) for row in lines})
    assert rows.keys() == predicted.keys()
    for name, record in predicted.items():
        row = rows[name]
        assert row["model"] == record["model"] and row["error"] == record.get("error", "")
        if "error" in record:
            continue
        assert row["tags"] == ";".join(record["tags"]) and float(row["seconds"]) == record["seconds"]
        for label in labels:  # 4 decimals, as predict writes CSV
            assert row[label] == f"{record['probabilities'][label]:.4f}", (name, label)


def test_out_is_a_folder_of_shards(tmp_path):
    from keras_music.beam.tag import main

    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), "--out", str(tmp_path / "tags.jsonl")])
    assert stopped.value.code == 2


def test_shards_commit_whole_and_read_back_newest_last(tmp_path):
    from keras_music.beam.shards import TEMPORARY_PREFIX, commit_shard, read_shards

    out = str(tmp_path / "tags")
    line = lambda name, **more: json.dumps({"file": name, "model": "m/1:abc", **more})  # noqa: E731
    commit_shard(out, "jsonl", [line("a.mp3", tags=[]), line("b.mp3", error="b.mp3: not audio")])
    commit_shard(out, "jsonl", [line("b.mp3", tags=["x"])])  # a retried file: its newest record wins
    (tmp_path / "tags" / f"{TEMPORARY_PREFIX}part-9.jsonl").write_text("{torn")  # a killed commit: ignored
    found = read_shards(out, "jsonl")
    assert found.shards == 2 and sorted(found.done) == ["a.mp3", "b.mp3"] and not found.failed
    assert found.model == "m/1:abc" and found.repeated == 1
    commit_shard(out, "jsonl", [json.dumps({"file": "c.mp3", "model": "other/1:def", "tags": []})])
    with pytest.raises(ValueError, match="written with model other/1:def"):
        read_shards(out, "jsonl")


@pytest.mark.slow
def test_a_killed_catalog_run_resumes_without_losing_or_repeating_a_file(export, audio_dir, tmp_path):
    """Shards are committed as the run goes (--shard-records 1); the run is killed (SIGKILL, whole
    process group) once some exist; the same command then tags only the rest: each file once."""
    import os
    import signal
    import time

    folder = copy_shared_audio(audio_dir, tmp_path / "catalog")
    clips = [p for p in folder.iterdir() if p.is_file()]
    for copy in range(8):  # 7 clips x 9 = 63 files, and the corrupt one
        (folder / f"copy{copy}").mkdir()
        for clip in clips:
            (folder / f"copy{copy}" / clip.name).write_bytes(clip.read_bytes())
    files = len(clips) * 9 + 1
    out = tmp_path / "tags"
    command = [sys.executable, "-m", "keras_music.beam.tag", str(folder), "--model", str(export), "--out", str(out),
               "--batch-size", "1", "--shard-records", "1", *DIRECT]
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("part-*.jsonl"))) < 5 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate()
    before = shard_records(out)  # whole shards only: each parses, no file twice
    assert 0 < len(before) < files, f"the run was not killed mid-catalog ({len(before)} of {files} files)"

    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1, again.stderr[-2000:]  # the corrupt file
    assert f"Resuming {out}: {len(before)} of {files} file(s) already there" in again.stderr
    after = shard_records(out)
    assert len(after) == files and all(after[name] == record for name, record in before.items())
    assert sum(1 for r in after.values() if r.get("error")) == 1
    assert f"Tagged {files - 1} file(s)" in again.stderr


@pytest.mark.slow
def test_the_packaged_model_gives_beam_its_quadrant_names_and_musicnn_tags(audio_dir, tmp_path):
    """Without --model both use the packaged model: Beam's records carry the same quadrant name,
    arousal/valence, grouped top tags (--top-k) and MSD/MTT tag probabilities as predict's."""
    files = [audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", audio_dir / "bach_chorale_bwv269_calm_22k_mono_64k.mp3"]
    local = predict(*files, "--top-k", "2", "--out", tmp_path / "local.jsonl")
    assert local.returncode == 0, local.stderr
    beam = beam_tag(*files, "--top-k", "2", "--out", tmp_path / "beam")
    assert beam.returncode == 0, beam.stderr
    expected, got = jsonl(tmp_path / "local.jsonl"), shard_records(tmp_path / "beam")
    assert got.keys() == expected.keys() == {str(f) for f in files}
    for name, record in expected.items():
        assert got[name].keys() == record.keys()
        assert {"quadrant", "arousal", "valence", "top_tags", "tag_probabilities"} <= record.keys()
        assert got[name]["quadrant"] == record["quadrant"] and got[name]["top_tags"] == record["top_tags"]
        assert all(len(names) == 2 for names in record["top_tags"].values())
        for tag_set in ("msd", "mtt"):
            np.testing.assert_allclose(list(got[name]["tag_probabilities"][tag_set].values()),
                                       list(record["tag_probabilities"][tag_set].values()), atol=1e-6)
    assert expected[str(files[0])]["quadrant"] == "Q1 happy/excited"  # Mozart's bright sonata


@pytest.mark.slow
def test_catalog_on_object_storage_reads_audio_and_writes_shards_in_a_bucket(export, audio_dir, gcs_bucket,
                                                                            predicted, catalog, tmp_path):
    """Audio in gs://music/catalog/, shards to gs://music/tags/ (the GCS emulator on 127.0.0.1, through
    Beam's gs:// filesystem): the same records as predict on local copies, and a rerun resumes."""
    for path in sorted(catalog.rglob("*")):
        if path.is_file() and path.name != "long.flac":  # the 130 s file is covered locally
            gcs_bucket.blob(f"catalog/{path.relative_to(catalog).as_posix()}").upload_from_filename(str(path))
    # two worker processes, each with its own client to the bucket
    command = ["gs://music/catalog", "--model", export, "--embeddings", "--out", "gs://music/tags", *DIRECT_PROCESSES]
    first = predict(*command, module="keras_music.beam.tag")
    assert first.returncode == 1, first.stderr[-3000:]  # the corrupt and the empty file
    assert "Tagged 7 file(s)" in first.stderr and "2 skipped" in first.stderr
    assert "skipped gs://music/catalog/bad/corrupt.mp3: gs://music/catalog/bad/corrupt.mp3" in first.stderr
    shards = [b for b in gcs_bucket.client.list_blobs("music", prefix="tags/") if "/part-" in b.name]
    records = [json.loads(line) for blob in shards for line in blob.download_as_text().splitlines()]
    got = {r["file"].removeprefix("gs://music/catalog/"): r for r in records}
    assert len(got) == len(records) == 9
    expected = {str(Path(name).relative_to(catalog)): r for name, r in predicted.items() if "long.flac" not in name}
    assert got.keys() == expected.keys()
    for name, record in expected.items():
        assert got[name].keys() == record.keys() and got[name]["model"] == record["model"], name
        if "error" in record:
            continue
        np.testing.assert_allclose(list(got[name]["probabilities"].values()),
                                   list(record["probabilities"].values()), atol=1e-6)
        np.testing.assert_allclose(got[name]["embedding"], record["embedding"], atol=1e-6)
    again = predict(*command, module="keras_music.beam.tag")
    assert "Resuming gs://music/tags: 9 of 9 file(s) already there" in again.stderr, again.stderr[-3000:]
    assert len([b for b in gcs_bucket.client.list_blobs("music", prefix="tags/") if "/part-" in b.name]) == len(shards)

