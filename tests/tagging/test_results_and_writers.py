"""TagResult records and the resumable collection file, without a model (the tagging library's pure parts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_music.config import FeatureRecipe
from keras_music.tagging.results import TagResult, Window, WindowGeometry, result_from_windows
from keras_music.tagging.writers import ResultLog, csv_header, format_results

LABELS = ["quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4"]


def a_result(name="a.mp3", embedding=None) -> TagResult:
    logits = np.array([[2.0, -3.0, -1.0, 0.5], [1.0, -2.0, -2.0, 1.5]])
    geometry = WindowGeometry(16000, FeatureRecipe(sample_rate=16000, hop_length=256), 187, 94)
    return result_from_windows(name, 16000 * 5, logits, np.array([0, 94]), LABELS, np.array([0.5] * 4), geometry,
                               embedding)


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
    assert TagResult("x", 1.0, {"happy": 0.9}).arousal is None  # not a quadrant model


def test_records_round_trip_with_embedding_and_windows():
    result = a_result(embedding=np.array([[0.1234567891234, -2.0], [0.3, 4.0]], dtype="float32"))
    record = result.to_record(windows=True)
    assert list(record) == ["file", "seconds", "probabilities", "tags", "embedding", "windows"]
    assert json.loads(json.dumps(record)) == record
    again = TagResult.from_record(record)
    assert again.to_record(windows=True) == record and isinstance(again.windows[0], Window)
    assert "windows" not in result.to_record()
    failed = TagResult("b.mp3", 0.0, error="cannot decode")
    assert not failed.ok and failed.to_record() == {"file": "b.mp3", "error": "cannot decode"}


def test_result_log_appends_resumes_drops_a_torn_line_and_refuses_another_layout(tmp_path):
    out = tmp_path / "tags.jsonl"
    with ResultLog(out, "jsonl", LABELS, per_window=False, model="m/1:abc") as log:
        log.add(a_result("a.mp3"))
        log.add_failure("b.mp3", "cannot decode")
    out.write_text(out.read_text() + '{"file": "c.mp3", "seco')  # killed mid-line
    with ResultLog(out, "jsonl", LABELS, per_window=False, model="m/1:abc") as log:
        assert log.done == {"a.mp3": True} and log.failed == {"b.mp3": "cannot decode"}
        assert log.todo(["a.mp3", "b.mp3", "c.mp3"]) == ["c.mp3"]
        assert log.todo(["a.mp3", "b.mp3", "c.mp3"], retry_failed=True) == ["b.mp3", "c.mp3"]
    assert out.read_text().endswith("\n") and len(out.read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="written with model m/1:abc, this run uses m/2:def"):
        ResultLog(out, "jsonl", LABELS, per_window=False, model="m/2:def")
    with pytest.raises(ValueError, match="written without per-window scores"):
        ResultLog(out, "jsonl", LABELS, per_window=True, model="m/1:abc")


def test_csv_collection_keeps_its_header_and_text_output_has_every_format(tmp_path):
    out = tmp_path / "tags.csv"
    with ResultLog(out, "csv", LABELS, per_window=False, model="m/1:abc") as log:
        log.add(a_result())
    header, row = out.read_text().splitlines()
    assert header.split(",") == csv_header(LABELS, per_window=False, collection=True)
    assert row.startswith("a.mp3,5.0,") and row.endswith(",quadrant_q1;quadrant_q4,,m/1:abc")
    with pytest.raises(ValueError, match="are not this run's"):
        ResultLog(out, "csv", LABELS, per_window=True, model="m/1:abc")
    results = [a_result("a.mp3"), a_result("b.mp3")]
    assert [r["file"] for r in json.loads(format_results(results, LABELS, "json", False))] == ["a.mp3", "b.mp3"]
    assert len(format_results(results, LABELS, "jsonl", False).splitlines()) == 2
    assert len(format_results(results, LABELS, "csv", True).splitlines()) == 1 + 4  # header + 2 windows each
