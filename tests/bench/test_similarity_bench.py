"""bench.similarity: chance is computed exactly from the label counts, the exact search limit is read off
a line through the timings, the 4Q rows search among the held-out clips alone, and a tiny run writes
its tables."""

from __future__ import annotations

import json
from itertools import permutations

import numpy as np
import pytest

from bench.similarity import (chance_same_label, chance_same_label_other_group, clustered_vectors, exact_batch_limit,
                              exact_limit, main, neighbour_agreement, quadrant_rows, recall_at_k)
from tests.test_similarity import write_records


def test_chance_is_the_rate_of_a_random_other_item_sharing_the_label():
    labels = ["Q1", "Q1", "Q1", "Q2", "Q3"]
    pairs = list(permutations(range(5), 2))  # every (item, other item)
    assert chance_same_label(labels) == pytest.approx(np.mean([labels[a] == labels[b] for a, b in pairs]))
    assert chance_same_label(["a", "b", "a", "b"]) == pytest.approx(1 / 3)
    groups = ["x", "x", "y", "y", "z"]  # another artist's items only
    expected = np.mean([np.mean([labels[b] == labels[a] for b in range(5) if groups[b] != groups[a]])
                        for a in range(5)])
    assert chance_same_label_other_group(labels, groups) == pytest.approx(expected)


def test_neighbour_agreement_and_recall():
    labels = ["Q1", "Q1", "Q2", "Q2"]
    positions = np.array([[1, 2], [2, 0], [3, 0], [0, 1]])
    agreement = neighbour_agreement(positions, labels)
    assert agreement["nearest_same"] == 0.5 and agreement["top_k_same"] == 3 / 8 and agreement["clips"] == 4
    assert agreement["standard_error"] == pytest.approx(0.25) and agreement["chance"] == pytest.approx(1 / 3)
    assert recall_at_k([[1, 2, 3], [4, 5, 6]], [[3, 2, 1], [4, 7, 8]]) == pytest.approx(2 / 3)


def test_the_exact_limit_is_where_the_fitted_line_reaches_the_budget():
    sizes = [1000, 10_000, 100_000, 1_000_000]
    assert exact_limit(sizes, [0.01 + 1.3e-5 * n for n in sizes], 10.0) == 760_000  # 769k, 2 digits, rounded down
    assert exact_limit(sizes, [5, 5, 5, 5], 10.0) is None  # flat: never reached
    assert exact_limit(sizes, [0.0, 0.01, 0.1, 1.0], 10.0) is None  # 10M: too far beyond the sizes measured
    assert exact_limit([10, 20], [20.0, 30.0], 10.0) == 0  # already over budget
    seconds = [0.59e-8 * n**2 for n in (1000, 10_000, 100_000)]  # every file's top 10: c n^2
    assert exact_batch_limit([1000, 10_000, 100_000], seconds, 2.0) == 18_000  # sqrt(2 / 0.59e-8) = 18.4k
    assert exact_batch_limit([1000], [1e-6], 2.0) is None


def test_synthetic_vectors_are_unit_length_and_clustered():
    vectors = clustered_vectors(2000, width=64, seed=1)
    assert vectors.shape == (2000, 64) and vectors.dtype == np.float32 and (vectors >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    scores = vectors[:200] @ vectors.T
    scores[np.arange(200), np.arange(200)] = -1
    assert np.median(scores.max(axis=1)) > 0.8 > float(scores[scores > -1].mean())  # near neighbours, far others


@pytest.fixture
def tiny_4q(tmp_path):
    """Records of 8 clips in two tight groups (Q1 clips near each other, Q3 clips too), their labels,
    artists, and a run config holding 4 of them out."""
    rng = np.random.default_rng(0)
    clips = [f"MT{i:010d}" for i in range(8)]
    quadrants = ["Q1", "Q3"] * 4
    centres = {"Q1": np.array([1.0, 0.0, 0.1]), "Q3": np.array([0.0, 1.0, 0.1])}
    embeddings = {f"/data/audio/{c}.mp3": (centres[q] + 0.05 * rng.random(3)).tolist()
                  for c, q in zip(clips, quadrants)}
    records = write_records(tmp_path / "mer4q.jsonl", embeddings)
    (tmp_path / "labels.csv").write_text("clip_id,quadrant,arousal,valence\n" + "".join(
        f"{c},{q},high,positive\n" for c, q in zip(clips, quadrants)))
    (tmp_path / "metadata.csv").write_text("clip_id,artist\n" + "".join(f"{c},artist {i // 2}\n"
                                                                          for i, c in enumerate(clips)))
    (tmp_path / "config.json").write_text(json.dumps({"splits": {"train": clips[:4], "test": clips[4:]}}))
    return records, tmp_path


def test_4q_rows_count_neighbours_sharing_the_quadrant_and_search_held_out_clips_alone(tiny_4q):
    records, folder = tiny_4q
    part = quadrant_rows(records, folder / "labels.csv", folder / "config.json")
    rows = {(r["searched"], r["neighbour"]): r for r in part["rows"]}
    assert rows[("all clips", "any")]["clips"] == 8 and rows[("held-out clips", "any")]["clips"] == 4
    assert all(r["nearest_same"] == 1.0 for r in rows.values())  # two tight groups by quadrant
    assert rows[("all clips", "any")]["chance"] == pytest.approx(3 / 7)
    assert rows[("held-out clips", "any")]["chance"] == pytest.approx(1 / 3)
    assert rows[("all clips", "another artist's")]["chance"] == pytest.approx(0.5)  # 3 of the 6 others
    example = part["example"]
    assert example["clip"] == "MT0000000004" and example["held_out"] and len(example["top"]) == 7
    assert [t["quadrant"] for t in example["top"][:3]] == ["Q1", "Q1", "Q1"]


def test_a_tiny_run_writes_its_tables(tiny_4q, tmp_path, capsys):
    records, folder = tiny_4q
    out = tmp_path / "results" / "similarity.json"
    assert main(["--sizes", "60", "120", "--queries", "5", "--compare-size", "120", "--records", str(records),
                 "--labels", str(folder / "labels.csv"), "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["vectors"] for r in payload["synthetic"]] == [60, 120] and "all_exact_s" in payload["synthetic"][0]
    markdown = out.with_suffix(".md").read_text()
    assert "| 120 |" in markdown and "Exact search limit" in markdown and "nearest shares the quadrant" in markdown
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(ValueError, match="bench:similarity:start"):
        main(["--sizes", "60", "--readme", str(readme), "--out", str(out)])
