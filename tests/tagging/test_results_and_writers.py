"""TagResult records and the resumable collection file, without a model (the tagging library's pure parts)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from keras_music.config import FeatureRecipe
from keras_music.tagging.results import TagResult, Window, WindowGeometry, WindowOutputs, result_from_windows
from keras_music.tagging.writers import RecordLayout, ResultLog, format_results

LABELS = ["quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4"]
LAYOUT = RecordLayout(tuple(LABELS))
# As an export's metadata.json says how to read its tag sets (the packaged model: musicnn's MSD and MTT tags).
TAG_SETS = {"msd": {"labels": ["rock", "80s", "female vocalists", "sad"], "groups": ["genre", "era", "vocals", "mood"],
                    "names": ["rock", "1980s", "female vocals", "sad"]},
            "mtt": {"labels": ["rock", "woman", "piano"], "groups": ["genre", "vocals", "instrument"],
                    "names": ["rock", "female vocals", "piano"]}}


def a_result(name="a.mp3", embedding=None, tag_sets=False, top_k=3) -> TagResult:
    logits = np.array([[2.0, -3.0, -1.0, 0.5], [1.0, -2.0, -2.0, 1.5]])
    sets = {"msd": np.array([[0.0, -1.0, 2.0, -4.0], [1.0, -1.0, 0.0, -2.0]]),
            "mtt": np.array([[3.0, -1.0, 0.5], [1.0, -3.0, 0.5]])} if tag_sets else {}
    geometry = WindowGeometry(16000, FeatureRecipe(sample_rate=16000, hop_length=256), 187, 94)
    return result_from_windows(name, 16000 * 5, WindowOutputs(logits, embedding, sets), np.array([0, 94]), LABELS,
                               np.array([0.5] * 4), geometry, TAG_SETS if tag_sets else None, top_k)


def test_a_result_is_the_sigmoid_of_the_mean_window_logit_with_windows_in_seconds():
    result = a_result()
    expected = 1 / (1 + np.exp(-np.array([1.5, -2.5, -1.5, 1.0])))
    np.testing.assert_allclose([result.probabilities[t] for t in LABELS], expected)
    assert result.tags == ["quadrant_q1", "quadrant_q4"] and result.seconds == 5.0
    assert [(w.start, w.end) for w in result.windows] == [(0.0, round(187 * 256 / 16000, 3)),
                                                          (round(94 * 256 / 16000, 3), round(281 * 256 / 16000, 3))]
    # arousal: share of the quadrant probability on Q1 + Q2; valence: on Q1 + Q4
    p = expected
    assert result.arousal == pytest.approx((p[0] + p[1]) / p.sum())
    assert result.valence == pytest.approx((p[0] + p[3]) / p.sum())
    assert result.quadrant == "Q1 happy/excited"
    assert TagResult("x", 1.0, {"happy": 0.9}).arousal is None  # not a quadrant model
    assert TagResult("x", 1.0, {"happy": 0.9}).quadrant is None


def test_tag_sets_are_averaged_like_the_tags_and_read_by_group():
    """A tag set's probability is the sigmoid of its windows' mean logit; a group lists its `top_k`
    names, most probable first, a name shared by synonyms or both networks scoring the highest."""
    result = a_result(tag_sets=True)
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x)))  # noqa: E731
    np.testing.assert_allclose(list(result.tag_probabilities["msd"].values()), sigmoid([0.5, -1.0, 1.0, -3.0]))
    np.testing.assert_allclose(list(result.tag_probabilities["mtt"].values()), sigmoid([2.0, -2.0, 0.5]))
    # rock: max(msd 0.62, mtt 0.88); female vocals: max(msd 0.73, mtt 0.12)
    assert result.top_tags == {"genre": ["rock"], "mood": ["sad"], "instrument": ["piano"],
                               "vocals": ["female vocals"], "era": ["1980s"]}
    assert list(result.top_tags) == ["genre", "mood", "instrument", "vocals", "era"]  # config.TAG_GROUPS order
    assert a_result(tag_sets=True, top_k=1).top_tags["genre"] == ["rock"]
    assert a_result().tag_probabilities == {} and a_result().top_tags == {}


def test_records_round_trip_with_embedding_and_windows():
    result = a_result(embedding=np.array([[0.1234567891234, -2.0], [0.3, 4.0]], dtype="float32"))
    record = result.to_record(windows=True)
    assert list(record) == ["file", "seconds", "probabilities", "tags", "quadrant", "arousal", "valence", "embedding",
                            "windows"]
    assert json.loads(json.dumps(record)) == record
    again = TagResult.from_record(record)
    assert again.to_record(windows=True) == record and isinstance(again.windows[0], Window)
    assert "windows" not in result.to_record()
    with_sets = a_result(tag_sets=True).to_record()
    assert with_sets["top_tags"]["vocals"] == ["female vocals"] and set(with_sets["tag_probabilities"]) == {"msd", "mtt"}
    assert TagResult.from_record(json.loads(json.dumps(with_sets))).to_record() == with_sets
    failed = TagResult("b.mp3", 0.0, error="cannot decode")
    assert not failed.ok and failed.to_record() == {"file": "b.mp3", "error": "cannot decode"}


def test_result_log_appends_resumes_drops_a_torn_line_and_refuses_another_layout(tmp_path):
    out = tmp_path / "tags.jsonl"
    with ResultLog(out, "jsonl", LAYOUT, model="m/1:abc") as log:
        log.add(a_result("a.mp3"))
        log.add_failure("b.mp3", "cannot decode")
    out.write_text(out.read_text() + '{"file": "c.mp3", "seco')  # killed mid-line
    with ResultLog(out, "jsonl", LAYOUT, model="m/1:abc") as log:
        assert log.done == {"a.mp3": True} and log.failed == {"b.mp3": "cannot decode"}
        assert log.todo(["a.mp3", "b.mp3", "c.mp3"]) == ["c.mp3"]
        assert log.todo(["a.mp3", "b.mp3", "c.mp3"], retry_failed=True) == ["b.mp3", "c.mp3"]
    assert out.read_text().endswith("\n") and len(out.read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="written with model m/1:abc, this run uses m/2:def"):
        ResultLog(out, "jsonl", LAYOUT, model="m/2:def")
    with pytest.raises(ValueError, match="written without per-window scores"):
        ResultLog(out, "jsonl", RecordLayout(tuple(LABELS), per_window=True), model="m/1:abc")


def test_csv_collection_keeps_its_header_and_text_output_has_every_format(tmp_path):
    out = tmp_path / "tags.csv"
    with ResultLog(out, "csv", LAYOUT, model="m/1:abc") as log:
        log.add(a_result())
    header, row = out.read_text().splitlines()
    assert header.split(",") == LAYOUT.header(collection=True) == [
        "file", "seconds", "quadrant", "arousal", "valence", "tags", *LABELS, "error", "model"]
    assert row.startswith("a.mp3,5.0,Q1 happy/excited,") and ",quadrant_q1;quadrant_q4," in row
    assert row.endswith(",,m/1:abc")
    with pytest.raises(ValueError, match="are not this run's"):
        ResultLog(out, "csv", RecordLayout(tuple(LABELS), per_window=True), model="m/1:abc")
    results = [a_result("a.mp3"), a_result("b.mp3")]
    assert [r["file"] for r in json.loads(format_results(results, LAYOUT, "json"))] == ["a.mp3", "b.mp3"]
    assert len(format_results(results, LAYOUT, "jsonl").splitlines()) == 2
    per_window = RecordLayout(tuple(LABELS), per_window=True)
    assert len(format_results(results, per_window, "csv").splitlines()) == 1 + 4  # header + 2 windows each


def test_csv_rows_read_as_a_person_asks_and_the_vectors_stay_in_json():
    layout = RecordLayout(tuple(LABELS), ("genre", "mood", "instrument", "vocals", "era"))
    text = format_results([a_result(tag_sets=True, top_k=2)], layout, "csv")
    (row,) = csv.DictReader(io.StringIO(text))
    assert list(row)[:10] == ["file", "seconds", "quadrant", "arousal", "valence", "genre", "mood", "instrument",
                              "vocals", "era"]
    assert row["quadrant"] == "Q1 happy/excited" and row["vocals"] == "female vocals" and row["genre"] == "rock"
    assert float(row["arousal"]) == pytest.approx(a_result().arousal, abs=1e-4)
    assert "piano" not in text.splitlines()[0]  # tag-set probabilities: JSON records only
