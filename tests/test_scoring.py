"""The one window rule: window starts, cutting, aggregation, evaluation windows, and chunk plans of long files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from tests.data.test_sequences import LENGTHS, clip_arrays, source  # noqa: F401  (the npz / store source fixture)

from keras_music.config import FeatureRecipe
from keras_music.scoring import WindowMeans, chunk_plan, clip_windows, kept_windows, window_dataset, window_starts


@pytest.mark.parametrize("frames, expected", [(30, [0, 4, 8, 12, 16, 18]), (12, [0]), (7, [0]), (13, [0, 1])])
def test_window_starts_cover_the_clip_to_its_end(frames, expected):
    assert window_starts(frames, 12, 4).numpy().tolist() == expected


def test_clip_windows_cut_every_named_feature_and_work_in_a_graph():
    rng = np.random.default_rng(0)
    clip = {"a": rng.normal(size=(30, 3)).astype("float32"), "b": rng.normal(size=(30, 2)).astype("float32")}
    windows = clip_windows(clip, 12, 5)
    assert sorted(windows) == ["a", "b", "length"] and windows["length"].numpy().tolist() == [12] * 5
    for name in clip:
        np.testing.assert_array_equal(windows[name].numpy(), np.stack([clip[name][s:s + 12] for s in (0, 5, 10, 15, 18)]))
    graph = tf.function(lambda a, b: clip_windows({"a": a, "b": b}, 12, 5))
    np.testing.assert_array_equal(graph(clip["a"][:7], clip["b"][:7])["a"].numpy(), clip["a"][None, :7])  # short
    whole = clip_windows(clip, 0, 0)  # no window rule: the whole clip
    assert whole["a"].shape == (1, 30, 3) and whole["length"].numpy().tolist() == [30]
    with pytest.raises(ValueError, match="no feature in the clip dict"):
        clip_windows({"length": 3}, 12, 5)


def test_window_means_average_windows_per_clip_in_any_batching():
    logits = np.arange(12, dtype="float32").reshape(6, 2)
    rows = np.array([0, 1, 0, 2, 1, 0])
    means = WindowMeans(3, 2)
    means.add(rows[:4], logits[:4])
    means.add(rows[4:], logits[4:])
    np.testing.assert_allclose(means.means(), [logits[[0, 2, 5]].mean(0), logits[[1, 4]].mean(0), logits[3]])
    partial = WindowMeans(2, 2)
    partial.add([0], logits[:1])
    with pytest.raises(ValueError, match="1 clip"):
        partial.means()


def test_window_dataset_yields_every_window_of_every_clip(source):  # noqa: F811
    ids = ["c1", "c3", "c5"]
    seen = {}
    for inputs, rows in window_dataset(source, ids, window=12, hop=5, batch_size=4):
        for mel, mfcc, length, row in zip(inputs["mel"].numpy(), inputs["mfcc"].numpy(), inputs["length"].numpy(),
                                          rows.numpy()):
            seen.setdefault(ids[row], []).append((mel[:length], mfcc[:length]))
            assert not mel[length:].any()
    for clip_id, starts in {"c1": [0, 5, 10, 15, 18], "c3": [0], "c5": [0, 5, 6]}.items():
        mel, mfcc = clip_arrays(clip_id)
        assert len(seen[clip_id]) == len(starts)
        for (got_mel, got_mfcc), start in zip(seen[clip_id], starts):
            np.testing.assert_array_equal(got_mel, mel[start:start + 12])
            np.testing.assert_array_equal(got_mfcc, mfcc[start:start + 12])


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("window, hop", [(64, 32), (216, 108), (50, 7)])
def test_chunk_plans_keep_exactly_the_file_windows(center, window, hop):
    recipe = FeatureRecipe(center=center)
    for num_samples in (1000, 64 * 1024, 3 * 60 * 22050, 3 * 60 * 22050 + 517, 7 * 60 * 22050 + 1023):
        whole = window_starts(recipe.num_frames(num_samples), window, hop).numpy().tolist()
        for max_samples in (500_000, 1_000_000, 10 * 60 * 22050):
            plan = chunk_plan(num_samples, recipe, window, hop, max_samples)
            kept = [s for chunk in plan for s in kept_windows(chunk, recipe, window, hop)[1].tolist()]
            assert kept == whole, (num_samples, max_samples)
            assert plan[-1].end == num_samples and plan[-1].keep_to == math.inf
            assert all(c.end - c.start <= max(max_samples, num_samples if len(plan) == 1 else 0) for c in plan)
            assert all(c.start % recipe.hop_length == 0 and c.first_frame % hop == 0 for c in plan)
    with pytest.raises(ValueError, match="too short for windows of 216 frames"):
        chunk_plan(10**7, FeatureRecipe(), 216, 108, 100_000)


def test_chunk_frames_equal_the_whole_file_frames_where_windows_are_kept():
    from keras_music.audio.frontend import compute_features

    recipe = FeatureRecipe()
    rng = np.random.default_rng(1)
    samples = (0.1 * rng.standard_normal(90 * 22050 + 333)).astype("float32")
    whole = compute_features(samples, recipe)["mel"]
    plan = chunk_plan(len(samples), recipe, 216, 108, 30 * 22050)
    assert len(plan) > 2
    for chunk in plan:
        part = compute_features(samples[chunk.start:chunk.end], recipe)["mel"]
        positions, starts = kept_windows(chunk, recipe, 216, 108)
        local = window_starts(len(part), 216, 108).numpy()[positions]
        for begin, file_begin in zip(local, starts):
            np.testing.assert_allclose(part[begin:begin + 216], whole[file_begin:file_begin + 216], atol=1e-3)
