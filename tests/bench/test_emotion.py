"""bench.emotion end to end on a small store with 4Q-style labels: both protocols, row selection,
per-run scores, the literature's reference rows, and merging tables run in parts."""

from __future__ import annotations

import json

import pytest

from bench.emotion import LITERATURE_4Q, RESULTS, main, results_path


def run(store, labels, out, *extra) -> dict:
    assert main(["--data", str(store), "--labels", str(labels), "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_literature_protocol_baselines(small_emotion_store, small_4q_labels, tmp_path):
    result = run(small_emotion_store, small_4q_labels, tmp_path / "lit.json",
                 "--protocol", "literature", "--folds", "2", "--models", "logistic")
    assert result["setup"]["protocol"] == "literature" and result["setup"]["repeats"] == 2  # the default
    assert result["setup"]["strata"] == "quadrant"
    [row] = result["rows"]
    assert row["model"] == "logistic regression, pooled mean+std" and row["runs"] == 4  # 2 folds x 2 repeats
    assert {(r["repeat"], r["fold"], r["fold_seed"]) for r in row["per_run"]} == {(0, 0, 0), (0, 1, 0), (1, 0, 1),
                                                                                   (1, 1, 1)}
    assert all(0 <= r["macro_f1"] <= 1 and r["seed"] is None for r in row["per_run"])
    assert row["macro_f1"] == pytest.approx(sum(r["macro_f1"] for r in row["per_run"]) / 4)
    assert [r["macro_f1"] for r in result["references"]] == [r["macro_f1"] for r in LITERATURE_4Q]
    table = (tmp_path / "lit.md").read_text()
    assert "| macro F1 |" in table and table.count("(reported, not run here)") == 2
    assert "0.764 (reported)" in table and "0.802 (reported)" in table


@pytest.mark.slow
def test_rows_run_in_parts_merge_into_one_table(small_emotion_store, small_4q_labels, tmp_path, capsys):
    common = ["--folds", "2", "--seeds", "0", "--epochs", "2"]
    tagger = run(small_emotion_store, small_4q_labels, tmp_path / "a.json", *common, "--models", "tag_mlp")
    baselines = run(small_emotion_store, small_4q_labels, tmp_path / "b.json", *common, "--models", "prior", "logistic")
    assert tagger["setup"]["grouping"] == "artist" and not tagger["references"]  # artist protocol: no references
    assert [r["model"] for r in baselines["rows"]] == ["prior (constant)", "logistic regression, pooled mean+std"]
    [row] = tagger["rows"]
    assert row["model"] == "tag_mlp (default)" and row["runs"] == 2 and row["seconds"] > 0
    assert all(r["seed"] == 0 and 1 <= r["epochs"] <= 2 for r in row["per_run"])
    assert main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert [r["model"] for r in merged["rows"]] == ["prior (constant)", "logistic regression, pooled mean+std",
                                                    "tag_mlp (default)"]  # table order, whatever the files' order
    assert merged["rows"][2] == row and merged["setup"] == tagger["setup"] and len(merged["parts"]) == 2
    assert "run in 2 parts" in merged["meta"]

    changed = run(small_emotion_store, small_4q_labels, tmp_path / "d.json", *common, "--models", "tag_mlp",
                  "--set", "dropout=0.1")  # a change judged on the same folds, merged beside the row it changes
    assert [r["model"] for r in changed["rows"]] == ["tag_mlp (default, dropout=0.1)"]
    assert changed["rows"][0]["per_run"] != row["per_run"]
    assert main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "d.json"), "--out", str(tmp_path / "n.json")]) == 0
    both = json.loads((tmp_path / "n.json").read_text())
    assert [r["model"] for r in both["rows"]] == ["tag_mlp (default)", "tag_mlp (default, dropout=0.1)"]
    assert "--models tag_mlp --set dropout=0.1" in both["meta"]
    assert main(["--data", str(small_emotion_store), "--labels", str(small_4q_labels), *common, "--models",
                 "tag_mlp", "--set", "spec_augment=0.1"]) == 1
    assert "spec_augment: tag_mlp (default) has no such field" in capsys.readouterr().err

    other = run(small_emotion_store, small_4q_labels, tmp_path / "c.json", "--folds", "2", "--seeds", "1",
                "--epochs", "2", "--models", "prior")
    assert main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 1
    assert "seeds [1] vs [0]" in capsys.readouterr().err
    assert main(["--merge", str(tmp_path / "b.json"), str(tmp_path / "b.json")]) == 1
    assert "row 'prior (constant)' is in both" in capsys.readouterr().err
    assert other["rows"][0]["runs"] == 2


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--models", "cnn_lsmt"])
    assert exit_.value.code == 2 and "--models 'cnn_lsmt': no such row" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--merge", "a.json", "--folds", "5"])
    assert "not from --folds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--protocol", "literature", "--folds", "1"])
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_default_paths_keep_parts_apart_and_a_missing_readme_block_fails_first(tmp_path, capsys):
    artist = {"data": "mer4q", "protocol": "artist", "folds": 5, "repeats": 1}
    assert results_path(artist) == RESULTS / "emotion-mer4q-5fold.json"
    assert results_path({**artist, "folds": 1}) == RESULTS / "emotion-mer4q.json"
    assert (results_path(artist, ["cnn_lstm (default)", "prior"])
            == RESULTS / "parts" / "emotion-mer4q-5fold-cnn_lstm-default-prior.json")
    literature = {"data": "../stores/4q", "protocol": "literature", "folds": 10, "repeats": 2}
    assert results_path(literature) == RESULTS / "emotion-4q-literature-10fold-x2.json"
    readme = tmp_path / "README.md"
    readme.write_text("no blocks\n")
    assert main(["--data", str(tmp_path / "nowhere"), "--folds", "5", "--readme", str(readme)]) == 1
    assert "<!-- bench:emotion-nowhere-5fold:start -->" in capsys.readouterr().err  # before reading any data


@pytest.mark.slow
def test_musicnn_rows_run_on_a_musicnn_store_only(musicnn_store, small_emotion_store, small_4q_labels, tmp_path):
    """The probes and musicnn families are rows where the data has musicnn's recipe, and
    musicnn_head trains there (head on cached windows) under the same folds."""
    result = run(musicnn_store / "store", musicnn_store / "labels.csv", tmp_path / "m.json", "--folds", "2",
                 "--seeds", "0", "--epochs", "2", "--models", "musicnn_probe_msd", "musicnn_head")
    names = [row["model"] for row in result["rows"]]
    assert names == ["musicnn probe (MSD_musicnn embedding, our port): logistic regression", "musicnn_head (default)"]
    assert all(row["runs"] == 2 and 0 <= row["macro_roc_auc"] <= 1 for row in result["rows"])
    # Tones an octave apart per quadrant: musicnn's embedding separates them.
    assert result["rows"][0]["macro_roc_auc"] > 0.9
    assert main(["--data", str(small_emotion_store), "--labels", str(small_4q_labels), "--out",
                 str(tmp_path / "x.json"), "--models", "musicnn_probe_msd"]) == 1  # not a musicnn store


def test_the_two_network_probe_joins_each_networks_pooled_embedding(musicnn_store):
    import numpy as np

    from bench.emotion import musicnn_embeddings
    from keras_music.data.emotion import load_emotion_data

    emotion = load_emotion_data(musicnn_store / "store", labels=musicnn_store / "labels.csv")
    ids = emotion.tags.clip_ids[:3]
    msd, mtt = (musicnn_embeddings(emotion, ids, w) for w in ("MSD_musicnn", "MTT_musicnn"))
    both = musicnn_embeddings(emotion, ids, "MSD_musicnn+MTT_musicnn")
    assert list(both) == ids and all(both[c].shape == (800,) for c in ids)
    for c in ids:
        np.testing.assert_array_equal(both[c], np.concatenate([msd[c], mtt[c]]))
    assert not np.allclose(msd[ids[0]], mtt[ids[0]])


@pytest.mark.slow
def test_parts_on_other_features_of_the_same_clips_merge_when_the_splits_match(
        musicnn_store, small_emotion_store, small_4q_labels, tmp_path, capsys):
    from keras_music.config import RECIPES
    from keras_music.data.extraction import extract_folder

    extract_folder(musicnn_store / "audio", tmp_path / "store4q", RECIPES["4q"], workers=1)
    labels = musicnn_store / "labels.csv"
    common = ["--folds", "2", "--seeds", "0"]
    run(tmp_path / "store4q", labels, tmp_path / "a.json", *common, "--models", "prior", "logistic")
    run(musicnn_store / "store", labels, tmp_path / "b.json", *common, "--models", "logistic", "musicnn_probe_mtt")
    assert main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert [r["model"] for r in merged["rows"]] == [
        "prior (constant) [store4q]", "logistic regression, pooled mean+std [store]",
        "logistic regression, pooled mean+std [store4q]",
        "musicnn probe (MTT_musicnn embedding, our port): logistic regression"]
    assert " + " in merged["setup"]["data"] and "checked clip by clip" in merged["meta"]
    # The parts' order does not change the table's.
    assert main(["--merge", str(tmp_path / "b.json"), str(tmp_path / "a.json"), "--out", str(tmp_path / "r.json")]) == 0
    assert [r["model"] for r in json.loads((tmp_path / "r.json").read_text())["rows"]] == \
        [r["model"] for r in merged["rows"]]
    # Other clips: refused, naming the difference.
    run(small_emotion_store, small_4q_labels, tmp_path / "c.json", *common, "--models", "prior")
    assert main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 1
    assert "parts of different tables" in capsys.readouterr().err


def test_set_reaches_how_clips_are_cut_and_validated():
    """`--set` takes the tagger's config fields and `SequenceConfig`'s (e.g. validate_on_windows)."""
    from bench.emotion import table_rows, with_overrides

    rows = [r for r in table_rows("pooled mean+std") if r.name == "mlp_lstm (default)"]
    [row] = with_overrides(rows, {"spec_augment": 0.1, "validate_on_windows": True})
    assert row.name == "mlp_lstm (default, spec_augment=0.1, validate_on_windows=true)"
    assert row.config.spec_augment == 0.1 and row.sequences == {"validate_on_windows": True}
    with pytest.raises(ValueError, match="no such field .*SequenceConfig's: crop_frames"):
        with_overrides(rows, {"crop_frame": 100})


def test_a_killed_bench_resumes_from_its_finished_runs(small_emotion_store, small_4q_labels, tmp_path, monkeypatch,
                                                       capsys, caplog):
    """Every finished fit is in `<out>.progress.jsonl` at once; the same command skips those runs,
    a cut-short last line runs again, other settings are refused, and the file goes with the table."""
    import bench.emotion as bench
    from bench.progress_log import progress_path

    out, calls = tmp_path / "t.json", []
    real_run_once = bench.run_once

    def run_once_then_die(row, fold, *rest):
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed during the fifth run
        calls.append((row.name, fold.fold))
        return real_run_once(row, fold, *rest)

    monkeypatch.setattr(bench, "run_once", run_once_then_die)
    args = ["--data", str(small_emotion_store), "--labels", str(small_4q_labels), "--out", str(out), "--folds", "3",
            "--models", "prior", "logistic"]
    with pytest.raises(KeyboardInterrupt):
        main(args)
    progress = progress_path(out)
    assert not out.exists() and progress.name == "t.progress.jsonl"
    lines = progress.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["models"] == ["prior", "logistic"]  # settings + 4 runs
    finished = [json.loads(line) for line in lines[1:]]
    with progress.open("a") as file:
        file.write(lines[4][: len(lines[4]) // 2])  # a fifth line cut short by the kill

    monkeypatch.setattr(bench, "run_once", real_run_once)
    assert main([*args[:-2], "prior"]) == 1  # other settings: refused, the file kept
    assert "models ['prior', 'logistic'] there, ['prior'] now" in capsys.readouterr().err and progress.exists()

    calls.clear()
    monkeypatch.setattr(bench, "run_once", run_once_then_die)
    with caplog.at_level("INFO"):
        result = run(small_emotion_store, small_4q_labels, out, *args[6:])
    assert "resuming: 4 of 6 runs already finished" in caplog.text
    assert calls == [("logistic regression, pooled mean+std", 1), ("logistic regression, pooled mean+std", 2)]
    prior, logistic = result["rows"]
    assert prior["per_run"] == [{k: v for k, v in r.items() if k != "row"} for r in finished[:3]]
    assert logistic["runs"] == 3 and logistic["per_run"][0] == {k: v for k, v in finished[3].items() if k != "row"}
    assert not progress.exists()  # the table is written: nothing left to resume


def test_a_dataset_named_by_its_alias_or_its_path_is_one_data(tmp_path, monkeypatch):
    import bench.emotion as bench_emotion

    (tmp_path / "mer4q").mkdir()
    (tmp_path / "x").mkdir()
    monkeypatch.setenv("KERAS_MUSIC_DATASETS", str(tmp_path))
    assert bench_emotion.data_name("mer4q") == "mer4q"
    assert bench_emotion.data_name(str(tmp_path / "x" / ".." / "mer4q")) == "mer4q"
    assert bench_emotion.data_name(str(tmp_path)) == str(tmp_path)
    assert bench_emotion.data_name("no/such/store") == "no/such/store"


def test_merge_names_a_part_it_cannot_read(tmp_path, capsys):
    (tmp_path / "cut.json").write_text('{"setup": {"data"')
    (tmp_path / "folder.json").mkdir()
    for bad in ("cut.json", "folder.json"):
        assert main(["--merge", str(tmp_path / bad), "--out", str(tmp_path / "m.json")]) == 1
        assert f"{tmp_path / bad}: not readable as a bench.emotion result" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_a_bench_killed_mid_fit_resumes_that_fit_from_its_last_epoch(small_emotion_store, small_4q_labels, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "t.json"
    command = [sys.executable, "-m", "bench.emotion", "--data", str(small_emotion_store), "--labels",
               str(small_4q_labels), "--out", str(out), "--folds", "2", "--seeds", "0", "--epochs", "3",
               "--models", "tag_mlp"]
    fit = tmp_path / "t.work" / "tag_mlp-default-r0-f0-s0"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=RESULTS.parents[1])
    pointer, deadline = fit / "backup" / "LATEST", time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if pointer.is_file():
            break  # an epoch of the first fit is backed up
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-3000:]
    finished = int(pointer.read_text().strip().removeprefix("epoch-")) + 1  # epochs backed up at the kill
    assert 1 <= finished < 3
    assert len(out.with_name("t.progress.jsonl").read_text().splitlines()) == 1  # settings only: no fit finished

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=RESULTS.parents[1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {finished} of this run had finished; continuing with epoch {finished + 1}" in resumed.stderr
    first, second = json.loads(out.read_text())["rows"][0]["per_run"]
    assert first["resumed_after_epoch"] == finished and "resumed_after_epoch" not in second
    assert first["epochs"] == 3 and first["seconds"] > 0
    assert not (tmp_path / "t.work").exists() and not out.with_name("t.progress.jsonl").exists()
