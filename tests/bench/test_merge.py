"""bench.merge: parts of one table join, parts of different tables and rows in two parts are
refused, and the rows come back in table order whatever the order of the files."""

from __future__ import annotations

import json

import pytest

from bench.merge import check_one_table, join_rows, read_parts, table_order

SETUP = {"data": "mer4q", "folds": 5, "seeds": [0, 1]}


def part(tmp_path, name: str, models: list[str], **setup) -> tuple:
    payload = {"setup": {**SETUP, **setup}, "parts": [{"models": models}],
               "rows": [{"model": m, "key": m.split(" ")[0]} for m in models]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    return path, payload


def test_a_file_that_is_no_result_is_named(tmp_path):
    (tmp_path / "cut.json").write_text('{"setup": {"data"')
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match=r"cut.json: not readable as a bench.emotion result \(JSONDecodeError"):
        read_parts([tmp_path / "cut.json"], "bench.emotion")
    with pytest.raises(ValueError, match="list.json: no 'setup' in it; it is not a result of this bench.emotion"):
        read_parts([tmp_path / "list.json"], "bench.emotion")
    good = part(tmp_path, "good", ["prior"])
    assert read_parts([good[0]], "bench.emotion") == [good]


def test_parts_join_only_when_they_are_of_one_table(tmp_path):
    a, b = part(tmp_path, "a", ["prior"]), part(tmp_path, "b", ["cnn_lstm (default)"])
    check_one_table([a, b], "data and folds")
    seeds = part(tmp_path, "c", ["x"], seeds=[1])
    with pytest.raises(ValueError, match=r"c.json and .*a.json are parts of different tables: seeds \[1\] vs \[0, 1\]; "
                                         "merge only runs of the same data and folds."):
        check_one_table([a, seeds], "data and folds")
    other_data = part(tmp_path, "d", ["x"], data="store")
    asked = []

    def same_clips(setup, first):
        asked.append((setup["data"], first["data"]))
        return setup["data"] == "store"

    check_one_table([a, other_data], "data", ("data",), same_clips)  # other data of the same clips: joins
    assert asked == [("store", "mer4q")]
    with pytest.raises(ValueError, match="data 'store' vs 'mer4q'"):
        check_one_table([a, other_data], "data", ("data",), lambda setup, first: False)  # other clips
    with pytest.raises(ValueError, match="data 'store' vs 'mer4q'"):
        check_one_table([a, other_data], "data")  # data may not differ at all
    with pytest.raises(ValueError, match="seeds"):  # only the keys that may differ
        check_one_table([a, part(tmp_path, "e", ["x"], data="store", seeds=[1])], "data", ("data",), same_clips)


def test_each_row_comes_from_one_part_labelled_where_asked(tmp_path):
    a, b = part(tmp_path, "a", ["prior", "logistic"]), part(tmp_path, "b", ["cnn_lstm (default)"])
    assert [r["model"] for r in join_rows([a, b])] == ["prior", "logistic", "cnn_lstm (default)"]
    labelled = join_rows([a, b], lambda payload, row: "4q" if row["key"] == "prior" else None)
    assert [r["model"] for r in labelled] == ["prior [4q]", "logistic", "cnn_lstm (default)"]
    assert a[1]["rows"][0]["model"] == "prior"  # the parts are left as they were
    with pytest.raises(ValueError, match=r"row 'prior' is in both .*a.json and .*a2.json; give each row to one part"):
        join_rows([a, part(tmp_path, "a2", ["prior"])])


def test_rows_come_back_in_table_order():
    order = ["prior (constant)", "logistic regression", "mlp_lstm (default)", "cnn_lstm (default)"]
    rows = [{"model": m} for m in ["cnn_lstm (default, spec_augment=0.1)", "unknown row", "cnn_lstm (default)",
                                   "logistic regression [store]", "mlp_lstm (default)", "logistic regression [4q]",
                                   "prior (constant) [4q]"]]
    assert [r["model"] for r in table_order(rows, order)] == [
        "prior (constant) [4q]", "logistic regression [4q]", "logistic regression [store]", "mlp_lstm (default)",
        "cnn_lstm (default)", "cnn_lstm (default, spec_augment=0.1)", "unknown row"]
