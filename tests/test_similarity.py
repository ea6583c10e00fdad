"""Similarity search: exact answers equal a brute-force ranking, approximate ones find most of them,
bad input names its parameter, and `keras-music similar` answers for files of the index and for
audio embedded with the index's own model (another model's digest is refused)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_music import similarity
from keras_music.errors import ParameterError
from keras_music.similar import main
from keras_music.similarity import SimilarityIndex
from keras_music.tagging.records import RecordsError
from keras_music.tagging.results import TagResult
from keras_music.tagging.writers import RecordLayout, record_text
from tests.test_api import run_examples

REPO = Path(__file__).resolve().parents[1]
LABELS = ("quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4")
MODEL = "emotion_4q/1:0123456789ab"


def clustered(n: int, width: int = 16, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Non-negative vectors around `clusters` centres, as a ReLU embedding layer gives them."""
    rng = np.random.default_rng(seed)
    centres = np.maximum(rng.normal(size=(clusters, width)), 0)
    return np.maximum(centres[rng.integers(clusters, size=n)] + 0.4 * rng.normal(size=(n, width)), 0) + 1e-3


def brute_force(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarities of `query` with every row, in float64."""
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return units @ (query / np.linalg.norm(query))


def assert_same_ranking(positions, scores, expected_scores: np.ndarray):
    """`positions` best first with `scores` equal to the brute-force ranking (ties within 1e-5 in any order)."""
    best = np.sort(expected_scores)[::-1][:len(positions)]
    np.testing.assert_allclose(scores, best, atol=1e-5)
    np.testing.assert_allclose(expected_scores[np.asarray(positions)], scores, atol=1e-5)


def test_the_examples_run():
    run_examples(SimilarityIndex, {})


def test_exact_queries_and_neighbours_equal_a_brute_force_ranking():
    vectors = clustered(400)
    names = [f"music/{i:03d}.mp3" for i in range(400)]
    index = SimilarityIndex(vectors, names, model=MODEL, method="exact")
    assert (len(index), index.width, index.method, index.model) == (400, 16, "exact", MODEL)
    for query in clustered(5, seed=1):
        pairs = index.query(query, k=10)
        assert_same_ranking([index.positions[n] for n, _ in pairs], [s for _, s in pairs], brute_force(vectors, query))
    pairs = index.neighbours("music/007.mp3", k=400)  # k above the size: every other file, itself left out
    assert len(pairs) == 399 and "music/007.mp3" not in dict(pairs)
    expected = brute_force(vectors, vectors[7])
    expected[7] = -np.inf
    assert_same_ranking([index.positions[n] for n, _ in pairs], [s for _, s in pairs], expected)
    assert index.query(vectors[7], k=1)[0][0] == "music/007.mp3" and index.query(vectors[7], k=1)[0][1] == \
        pytest.approx(1.0, abs=1e-6)
    left = index.query(vectors[7], k=3, exclude=["music/007.mp3", "music/001.mp3"])
    assert {"music/007.mp3", "music/001.mp3"}.isdisjoint(dict(left)) and len(left) == 3


def test_every_files_neighbours_at_once_equal_one_query_each(monkeypatch):
    """`all_neighbours` in blocks (7 rows a block here, the last one short) = a brute-force ranking per file."""
    vectors = clustered(300, seed=2)
    index = SimilarityIndex(vectors, [str(i) for i in range(300)], method="exact")
    monkeypatch.setattr(similarity, "BLOCK_SCORES", 300 * 7)
    positions, scores = index.all_neighbours(k=5)
    assert positions.shape == scores.shape == (300, 5) and scores.dtype == np.float32
    assert not (positions == np.arange(300)[:, None]).any()
    for row in range(300):
        expected = brute_force(vectors, vectors[row])
        expected[row] = -np.inf
        assert_same_ranking(positions[row], scores[row], expected)
    assert np.all(np.diff(scores, axis=1) <= 1e-7)  # best first
    small = SimilarityIndex(vectors[:3], ["a", "b", "c"])
    assert small.all_neighbours(k=10)[0].shape == (3, 2)
    assert SimilarityIndex(vectors[:1], ["alone"]).all_neighbours()[0].shape == (1, 0)
    assert SimilarityIndex(vectors[:1], ["alone"]).neighbours("alone") == []


def test_approximate_search_finds_most_of_the_exact_top_10():
    pytest.importorskip("faiss", reason="the ann extra (faiss-cpu) is not installed")
    vectors = clustered(5000, width=64, clusters=70, seed=3)
    names = [str(i) for i in range(5000)]
    exact = SimilarityIndex(vectors, names, method="exact")
    approximate = SimilarityIndex(vectors, names, method="approximate")
    assert approximate.method == "approximate"
    queries = clustered(100, width=64, clusters=70, seed=3)  # the same centres: queries near the data
    recall = np.mean([len(set(dict(exact.query(q, 10))) & set(dict(approximate.query(q, 10)))) / 10 for q in queries])
    assert recall >= 0.9
    found, _ = approximate.all_neighbours(k=10)
    truth, _ = exact.all_neighbours(k=10)
    assert not (found == np.arange(5000)[:, None]).any()
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.9
    pairs = approximate.neighbours("42", k=10)
    assert "42" not in dict(pairs) and len(pairs) == 10
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)


def test_auto_searches_exactly_up_to_the_limit_and_without_faiss_says_how_to_install_it(monkeypatch, caplog):
    vectors = clustered(200)
    names = [str(i) for i in range(200)]
    index = SimilarityIndex(vectors, names)  # far below both limits
    assert (index.method, index.batch_method) == ("exact", "exact")
    if similarity.ann_library() is not None:
        index = SimilarityIndex(vectors, names, exact_batch_limit=100)  # every file's neighbours: approximate
        assert (index.method, index.batch_method) == ("exact", "approximate")
        assert SimilarityIndex(vectors, names, exact_limit=100).method == "approximate"
    monkeypatch.setitem(sys.modules, "faiss", None)  # as where the extra is not installed: import fails
    with caplog.at_level(logging.WARNING, logger="keras_music.similarity"):
        index = SimilarityIndex(vectors, names, exact_limit=100)
    assert (index.method, index.batch_method) == ("exact", "exact")
    assert caplog.text.count("pip install 'keras_music[ann]'") == 1
    with pytest.raises(ParameterError, match=r"method='approximate': needs faiss.*pip install 'keras_music\[ann\]'"):
        SimilarityIndex(vectors, names, method="approximate")


@pytest.mark.parametrize("vectors, names, parameter, problem", [
    ([[1.0, 0.0], [0.0, 0.0]], ["a", "b"], "vectors='b'", "is all zeros"),
    ([[1.0, np.nan], [0.0, 1.0]], ["a", "b"], "vectors='a'", "holds NaN or infinite values"),
    ([[1.0, np.inf], [0.0, 1.0]], ["a", "b"], "vectors='a'", "holds NaN or infinite values"),
    (np.zeros((0, 4)), [], "vectors='0 rows'", "an empty index"),
    ([1.0, 2.0], ["a"], "vectors='array of shape (2,)'", "expected (files, width)"),
    ([[1.0, 0.0], [0.0, 1.0]], ["a"], "names='1 names'", "expected one per row"),
    ([[1.0, 0.0], [0.0, 1.0]], ["a", "a"], "names='a'", "given more than once"),
])
def test_vectors_without_a_direction_and_mismatched_names_are_refused(vectors, names, parameter, problem):
    with pytest.raises(ParameterError) as error:
        SimilarityIndex(vectors, names)
    assert str(error.value).startswith(f"{parameter}: ") and problem in str(error.value)


def test_bad_queries_name_their_parameter():
    index = SimilarityIndex(clustered(20, width=4), [f"songs/track_{i:02d}.mp3" for i in range(20)])
    for k in (0, -1, 2.5, True, "3"):
        with pytest.raises(ParameterError, match=r"^k=.*: expected a whole number of at least 1"):
            index.query([1, 2, 3, 4], k=k)
    with pytest.raises(ParameterError, match=r"^vector='array of shape \(3,\)': expected \(4,\)"):
        index.query([1, 2, 3])
    with pytest.raises(ParameterError, match=r"^vector='the query': is all zeros"):
        index.query([0, 0, 0, 0])
    with pytest.raises(ParameterError, match=r"^vector='the query': holds NaN"):
        index.query([1, np.nan, 0, 0])
    with pytest.raises(ParameterError, match=r"^name='trak_02.mp3': not a file of the index \(20 files\)\. Close "
                                             r"names: songs/track_02\.mp3, "):
        index.neighbours("trak_02.mp3")
    with pytest.raises(ParameterError, match=r"^method='fast': expected one of auto, exact, approximate"):
        SimilarityIndex(clustered(3), ["a", "b", "c"], method="fast")


def test_a_file_is_found_by_its_name_its_path_or_a_file_name_only_it_has(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    names = ["a/one.mp3", "a/two.mp3", "b/two.mp3", str(tmp_path / "c" / "three.mp3")]
    index = SimilarityIndex(clustered(4, width=3), names)
    assert index.find("a/one.mp3") == 0 and index.find(tmp_path / "a" / "one.mp3") == 0  # the same file
    assert index.find("./a/../a/one.mp3") == 0 and index.find("one.mp3") == 0 and index.find("three.mp3") == 3
    assert index.find("four.mp3") is None
    (tmp_path / "a" / "three.mp3").write_bytes(b"another file")  # on disk, not the record c/three.mp3
    assert index.find("a/three.mp3") is None and index.find("elsewhere/three.mp3") == 3
    with pytest.raises(ParameterError, match=r"^name='two.mp3': 2 files of the index have this name \(a/two.mp3, "
                                             r"b/two.mp3\); give more of its path"):
        index.find("two.mp3")
    assert [name for name, _ in index.neighbours("b/two.mp3", k=3)] == sorted(
        set(names) - {"b/two.mp3"}, key=lambda n: -index.vectors[index.positions[n]] @ index.vectors[2])


def write_records(path: Path, embeddings: dict[str, list | None], model: str | None = MODEL) -> Path:
    """A records file as `predict --embeddings --out X.jsonl` writes it (the real writer), one file a line."""
    width = next((len(e) for e in embeddings.values() if e is not None), 0)
    layout = RecordLayout(LABELS, embedding_width=width)
    lines = []
    for file, embedding in embeddings.items():
        result = TagResult(file=file, seconds=30.0, tags=["quadrant_q1"],
                           probabilities=dict(zip(LABELS, (0.7, 0.1, 0.1, 0.1))),
                           embedding=None if embedding is None else np.asarray(embedding, "float32"))
        text = record_text(result, "jsonl", layout, model)
        lines.append(text if model is not None else json.dumps({k: v for k, v in json.loads(text).items()
                                                                 if k != "model"}) + "\n")
    path.write_text("".join(lines))
    return path


EMBEDDINGS = {"music/calm.mp3": [1.0, 0.1, 0.0], "music/calm2.mp3": [0.9, 0.2, 0.0],
              "music/loud.mp3": [0.0, 0.1, 1.0], "music/mid.mp3": [0.5, 0.0, 0.5]}


def test_an_index_of_records_keeps_their_model_and_leaves_out_silent_files(tmp_path, caplog):
    records = write_records(tmp_path / "tags.jsonl", {**EMBEDDINGS, "music/silence.wav": [0.0, 0.0, 0.0]})
    with caplog.at_level(logging.WARNING, logger="keras_music.similarity"):
        index = SimilarityIndex.from_records(records)
    assert index.model == MODEL and index.names == list(EMBEDDINGS) and index.source == str(records)
    assert "1 file(s) left out" in caplog.text and "music/silence.wav" in caplog.text
    assert [name for name, _ in index.neighbours("calm.mp3", k=2)] == ["music/calm2.mp3", "music/mid.mp3"]
    with pytest.raises(ParameterError, match="left out of the index: its embedding is all zeros"):
        index.neighbours("music/silence.wav")
    plain = write_records(tmp_path / "plain.jsonl", dict.fromkeys(EMBEDDINGS))  # predict without --embeddings
    with pytest.raises(RecordsError, match=r"records have no embeddings.*--embeddings --out FILE.jsonl"):
        SimilarityIndex.from_records(plain)


def run_similar(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_similar_lists_a_files_neighbours_as_a_table_csv_or_json(tmp_path, capsys):
    records = write_records(tmp_path / "tags.jsonl", EMBEDDINGS)
    code, out, err = run_similar(capsys, "calm.mp3", "--index", records, "-k", "2")
    assert code == 0 and "Most similar to music/calm.mp3 (in the index) among 4 files (exact search)" in err
    assert out.splitlines() == ["rank   score  file", "   1   0.993  music/calm2.mp3", "   2   0.704  music/mid.mp3"]
    code, out, _ = run_similar(capsys, "music/calm.mp3", "--index", records, "--format", "csv", "-k", "1")
    assert code == 0 and out.splitlines() == ["rank,score,file", "1,0.992928,music/calm2.mp3"]
    code, out, _ = run_similar(capsys, "music/loud.mp3", "--index", records, "--format", "json")
    answer = json.loads(out)
    assert [a["rank"] for a in answer] == [1, 2, 3] and answer[0]["file"] == "music/mid.mp3"
    assert answer[0]["score"] == pytest.approx(0.7036, abs=1e-3)


def test_similar_says_what_is_wrong_in_one_line(tmp_path, capsys, monkeypatch):
    records = write_records(tmp_path / "tags.jsonl", EMBEDDINGS)
    code, _, err = run_similar(capsys, "calm3.mp3", "--index", records)
    assert code == 1 and err.strip().count("\n") == 0
    assert err.startswith(f"error: QUERY 'calm3.mp3': not a file of {records} (4 files), and no such audio file. "
                          "Close names in the index: music/calm.mp3, music/calm2.mp3")
    code, _, err = run_similar(capsys, tmp_path, "--index", records)
    assert code == 1 and "a folder, not an audio file" in err
    code, _, err = run_similar(capsys, "calm.mp3", "--index", tmp_path / "missing.jsonl")
    assert code == 1 and err.startswith(f"error: --index '{tmp_path / 'missing.jsonl'}': no such file")
    plain = write_records(tmp_path / "plain.jsonl", dict.fromkeys(EMBEDDINGS))
    code, _, err = run_similar(capsys, "calm.mp3", "--index", plain)
    assert code == 1 and "records have no embeddings" in err and "--embeddings --out FILE.jsonl" in err
    song = tmp_path / "new.wav"
    song.write_bytes(b"RIFF")
    anonymous = write_records(tmp_path / "anonymous.jsonl", EMBEDDINGS, model=None)
    code, _, err = run_similar(capsys, song, "--index", anonymous)
    assert code == 1 and "carry no model identity, so an audio QUERY needs --model" in err
    other = write_records(tmp_path / "other.jsonl", EMBEDDINGS, model="my_tagger/3:fedcba987654")
    code, _, err = run_similar(capsys, song, "--index", other)
    assert code == 1 and "written by the export my_tagger/3:fedcba987654, not a packaged model" in err
    monkeypatch.setitem(sys.modules, "faiss", None)
    code, _, err = run_similar(capsys, "calm.mp3", "--index", records, "--method", "approximate")
    assert code == 1 and err.startswith("error: --method 'approximate': needs faiss") and "keras_music[ann]" in err
    with pytest.raises(SystemExit) as exit:
        main(["calm.mp3", "--index", str(records), "-k", "0"])
    assert exit.value.code == 2 and "-k 0: expected a whole number of at least 1" in capsys.readouterr().err


def similar(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "keras_music.similar", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, check=False)


@pytest.mark.slow
def test_similar_with_the_packaged_model_on_the_shared_audio(packaged_records, tmp_path):
    """predict --embeddings on the shared clips, then `similar` (a) for a file of the index, (b) for a copy of
    one under another name (embedded with the packaged model: itself first, score 1), (c) refused for an
    index whose model digest is not the packaged model's."""
    records = packaged_records
    files = [r["file"] for r in map(json.loads, records.read_text().splitlines()) if "error" not in r]
    assert len(files) == 7
    bach = next(f for f in files if f.endswith("bach_chorale_bwv269_calm_44k_stereo_16bit.wav"))

    in_index = similar(Path(bach).name, "--index", records, "--format", "json")
    assert in_index.returncode == 0, in_index.stderr
    answer = json.loads(in_index.stdout)
    assert len(answer) == 6 and bach not in [a["file"] for a in answer]
    assert -1 <= answer[-1]["score"] <= answer[0]["score"] <= 1

    copy = tmp_path / "query.wav"
    shutil.copy(bach, copy)
    embedded = similar(copy, "--index", records, "-k", "3")
    assert embedded.returncode == 0, embedded.stderr
    first = embedded.stdout.splitlines()[1].split()
    assert first[0] == "1" and first[2] == bach and float(first[1]) >= 0.999
    model = json.loads(records.read_text().splitlines()[0])["model"]
    assert f"(embedded with {model})" in embedded.stderr

    altered = tmp_path / "altered.jsonl"
    altered.write_text(records.read_text().replace(model, model[:-12] + "000000000000"))
    refused = similar(copy, "--index", altered)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"(digest 000000000000), but the packaged model is {model} (digest {model[-12:]})" in refused.stderr
    assert "Traceback" not in refused.stderr
