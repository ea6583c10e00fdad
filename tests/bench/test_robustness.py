"""The robustness bench's conditions on synthetic signals: what each keeps and what it removes."""

import numpy as np
import pytest

from bench import robustness

RATE = 32000  # the 4Q MP3s' rate


def tone_mix(seconds=2.0, rate=RATE, frequencies=(100.0, 1000.0, 6000.0), amplitude=0.2):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * sum(np.sin(2 * np.pi * f * t) for f in frequencies)).astype(np.float32)


def energy_at(samples, rate, frequency, width=20.0):
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    return spectrum[np.abs(frequencies - frequency) < width].sum()


def test_excerpt_is_a_seeded_crop_of_3_to_10_seconds():
    samples = np.arange(30 * RATE, dtype=np.float32)  # each value its position: a crop is a contiguous run
    lengths = []
    for seed in range(40):
        crop = robustness.excerpt(samples, RATE, seed)
        assert 3 * RATE <= len(crop) <= 10 * RATE
        start = int(crop[0])
        np.testing.assert_array_equal(crop, samples[start:start + len(crop)])
        np.testing.assert_array_equal(crop, robustness.excerpt(samples, RATE, seed))  # same seed, same crop
        lengths.append(len(crop))
    assert len(set(lengths)) > 30  # lengths vary with the seed
    assert robustness.clip_seed(0, "a") == robustness.clip_seed(0, "a") != robustness.clip_seed(1, "a")
    assert robustness.clip_seed(0, "a") != robustness.clip_seed(0, "b")


def test_excerpt_of_a_short_clip_is_the_clip():
    samples = np.ones(2 * RATE, np.float32)
    assert len(robustness.excerpt(samples, RATE, 0)) == 2 * RATE


def test_gain_is_in_decibels_and_clips():
    samples = tone_mix(amplitude=0.01)
    quieter = robustness.quieter(samples, RATE, 0)
    assert 20 * np.log10(np.sqrt(np.mean(quieter ** 2)) / np.sqrt(np.mean(samples ** 2))) == pytest.approx(-20, abs=1e-3)
    loud = robustness.louder(tone_mix(amplitude=0.3), RATE, 0)
    assert np.abs(loud).max() == pytest.approx(1.0)
    assert loud.dtype == np.float32


def test_band_limits_remove_the_energy_outside_their_band():
    samples = tone_mix()
    low = robustness.band_limited(samples, RATE, 0)
    assert len(low) == len(samples) and low.dtype == np.float32
    assert energy_at(low, RATE, 6000) < 1e-6 * energy_at(samples, RATE, 6000)
    assert energy_at(low, RATE, 1000) == pytest.approx(energy_at(samples, RATE, 1000), rel=1e-3)
    line = robustness.band_pass(samples, RATE, *robustness.PHONE_BAND_HZ)
    assert energy_at(line, RATE, 100) < 1e-6 * energy_at(samples, RATE, 100)
    assert energy_at(line, RATE, 6000) < 1e-6 * energy_at(samples, RATE, 6000)
    assert energy_at(line, RATE, 1000) == pytest.approx(energy_at(samples, RATE, 1000), rel=1e-3)


def test_phone_is_band_limited_and_quantised():
    samples = tone_mix()
    phoned = robustness.phone(samples, RATE, 0)
    assert len(phoned) == len(samples)
    assert energy_at(phoned, RATE, 6000) < 1e-3 * energy_at(samples, RATE, 6000)  # quantisation noise only
    companded = np.sign(phoned) * np.log1p(robustness.MU * np.abs(phoned)) / np.log1p(robustness.MU)
    np.testing.assert_allclose(companded * 127, np.round(companded * 127), atol=1e-3)  # 8-bit mu-law levels
    assert np.corrcoef(phoned, robustness.band_pass(samples, RATE, *robustness.PHONE_BAND_HZ))[0, 1] > 0.99


def test_mp3_round_trip_keeps_length_alignment_and_reports_a_low_bit_rate():
    rng = np.random.default_rng(0)
    samples = (tone_mix(3.0, frequencies=(220.0, 440.0, 880.0)) + 0.02 * rng.standard_normal(3 * RATE)).astype(np.float32)
    decoded, kbps = robustness.mp3_round_trip(samples, RATE)
    assert len(decoded) == len(samples) and decoded.dtype == np.float32
    assert kbps == pytest.approx(32, abs=1)
    assert robustness.mp3_round_trip(samples[::2].copy(), 16000)[1] == pytest.approx(32, abs=2)  # MPEG-2 rates too
    with pytest.raises(ValueError, match="8000 Hz"):
        robustness.mp3_round_trip(samples[::4].copy(), 8000)
    middle = slice(RATE // 2, -RATE // 2)
    assert np.corrcoef(decoded[middle], samples[middle])[0, 1] > 0.95  # aligned, not shifted by the encoder delay
    assert not np.allclose(decoded, samples, atol=1e-3)  # lossy


def test_delay_of_finds_a_shift():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal(5000)
    assert robustness.delay_of(reference, np.concatenate([np.zeros(1105), reference]), 3456) == 1105
    assert robustness.delay_of(reference, reference, 3456) == 0


def test_every_condition_is_a_pure_function_of_the_waveform_and_seed():
    samples = tone_mix(12.0)
    for name, (function, _) in robustness.CONDITIONS.items():
        first, again = function(samples.copy(), RATE, 7), function(samples.copy(), RATE, 7)
        np.testing.assert_array_equal(first, again, err_msg=name)
        assert first.dtype == np.float32, name
        assert name == "excerpt" or len(first) == len(samples), name


def row(name, accuracies):
    runs = [{"fold": fold, "seed": 0, "scores": {k: a for k in robustness.SCORES}}
            for fold, a in enumerate(accuracies)]
    return {"name": name, "what": name, "per_run": runs,
            "scores": {k: robustness.summary(accuracies) for k in robustness.SCORES}}


def test_the_table_pairs_each_condition_with_clean_run_by_run():
    result = {"rows": [row("clean", [0.7, 0.6]), row("excerpt", [0.6, 0.6])], "meta": "m", "command": "c"}
    table = robustness.markdown(result)
    assert "| excerpt | excerpt | 0.600 ± 0.000 |" in table
    assert "| -0.050 ± 0.050 |" in table  # paired: mean and std of the per-run differences (-0.1, 0.0)
    assert table.count("| n/a |") == 1  # clean against itself


def test_table_publishes_a_finished_run(tmp_path):
    result = {"rows": [{"name": "clean", "what": "w", "per_run": [],
                        "scores": {k: robustness.summary([0.5]) for k in robustness.SCORES}}],
              "meta": "m", "command": "python -m bench.robustness --folds 5"}
    source, readme = tmp_path / "run.json", tmp_path / "doc.md"
    source.write_text(__import__("json").dumps(result))
    readme.write_text("a\n<!-- bench:robustness:start -->\nPREVIOUS\n<!-- bench:robustness:end -->\nb\n")
    robustness.main(["--table", str(source), "--out", str(tmp_path / "robustness.json"), "--readme", str(readme)])
    assert "| clean | w | 0.500 ± 0.000 |" in (tmp_path / "robustness.md").read_text()
    assert "PREVIOUS" not in readme.read_text() and "--folds 5" in readme.read_text()
    with pytest.raises(SystemExit):
        robustness.main(["--out", str(tmp_path / "x.json")])  # a run needs its data


def test_a_baseline_run_heads_the_table_with_paired_changes(tmp_path):
    before = {"rows": [row("clean", [0.7, 0.6]), row("quieter", [0.4, 0.3])], "meta": "2 folds", "command": "c"}
    after = {"rows": [row("clean", [0.7, 0.7]), row("quieter", [0.7, 0.5]), row("phone", [0.5, 0.5])],
             "meta": "2 folds", "command": "c", "changes": {"level_normalization": 1},
             "reliability": {"bins": [{"low": 0.9, "high": 1.0, "count": 3, "probability": 0.95, "positive_rate": 1.0}],
                             "ece": 0.05, "brier": 0.01}}
    source, baseline = tmp_path / "after.json", tmp_path / "before.json"
    source.write_text(__import__("json").dumps(after))
    baseline.write_text(__import__("json").dumps(before))
    robustness.main(["--table", str(source), "--baseline", str(baseline), "--out", str(tmp_path / "r.json")])
    text = (tmp_path / "r.md").read_text()
    assert "After: `musicnn_head` (level_normalization=1)" in text
    assert "| quieter | 0.350 ± 0.050 | 0.600 ± 0.100 | +0.250 ± 0.050 (2 runs) |" in text
    assert "| phone | n/a | 0.500 ± 0.000 | n/a |" in text  # no run before: nothing to pair
    assert "expected calibration error 0.050" in text and "| 0.9-1.0 | 3 | 0.950 | 1.000 |" in text
    baseline.write_text("{}")
    with pytest.raises(ValueError, match="not a bench.robustness result"):
        robustness.main(["--table", str(source), "--baseline", str(baseline), "--out", str(tmp_path / "r.json")])
