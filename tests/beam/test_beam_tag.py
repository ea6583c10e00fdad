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
from tests.beam.test_beam_extract import DIRECT  # noqa: E402
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


@pytest.fixture(scope="module")
def predicted(export, catalog, tmp_path_factory) -> dict[str, dict]:
    """`predict --embeddings --out X.jsonl` over the catalog: the records to match."""
    out = tmp_path_factory.mktemp("predicted") / "local.jsonl"
    local = predict(catalog, "--model", export, "--embeddings", "--out", out)
    assert local.returncode == 1, local.stderr  # the two bad files
    return jsonl(out)


@pytest.mark.slow
def test_runinference_rows_equal_predict_rows(export, catalog, predicted, tmp_path):
    beam = beam_tag(catalog, "--model", export, "--embeddings", "--out", tmp_path / "beam.jsonl")
    assert beam.returncode == 1, beam.stderr
    assert "Tagged 8 file(s)" in beam.stderr and "2 skipped" in beam.stderr

    got = jsonl(tmp_path / "beam.jsonl")
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

    beam = beam_tag(catalog, "--model", export, "--out", tmp_path / "beam.csv")
    assert beam.returncode == 1, beam.stderr
    header, *rows = csv.reader((tmp_path / "beam.csv").open(newline=""))
    tagger = Tagger(export, load=False)
    labels = tagger.labels
    assert header == tagger.layout().header(collection=True)  # predict --out X.csv's columns
    rows = {row[0]: dict(zip(header, row)) for row in rows}
    assert rows.keys() == predicted.keys()
    for name, record in predicted.items():
        row = rows[name]
        assert row["model"] == record["model"] and row["error"] == record.get("error", "")
        if "error" in record:
            continue
        assert row["tags"] == ";".join(record["tags"]) and float(row["seconds"]) == record["seconds"]
        for label in labels:  # 4 decimals, as predict writes CSV
            assert row[label] == f"{record['probabilities'][label]:.4f}", (name, label)


def test_runner_refuses_an_existing_output(tmp_path):
    from keras_music.beam.tag import main

    (tmp_path / "tags.jsonl").write_text("")
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), "--out", str(tmp_path / "tags.jsonl")])
    assert stopped.value.code == 2


@pytest.mark.slow
def test_the_packaged_model_gives_beam_its_quadrant_names_and_musicnn_tags(audio_dir, tmp_path):
    """Without --model both use the packaged model: Beam's records carry the same quadrant name,
    arousal/valence, grouped top tags (--top-k) and MSD/MTT tag probabilities as predict's."""
    files = [audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", audio_dir / "bach_chorale_bwv269_calm_22k_mono_64k.mp3"]
    local = predict(*files, "--top-k", "2", "--out", tmp_path / "local.jsonl")
    assert local.returncode == 0, local.stderr
    beam = beam_tag(*files, "--top-k", "2", "--out", tmp_path / "beam.jsonl")
    assert beam.returncode == 0, beam.stderr
    expected, got = jsonl(tmp_path / "local.jsonl"), jsonl(tmp_path / "beam.jsonl")
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
