"""bench.publish: result file names and README blocks."""

from __future__ import annotations

import pytest

from bench.publish import check_block, slug, update_block


def test_slug_names_files_after_rows_and_settings():
    assert slug("cnn_lstm (default) prior") == "cnn_lstm-default-prior"
    assert slug('musicnn_head (default, weights="MSD_musicnn+MTT_musicnn")') == \
        "musicnn_head-default-weights-msd_musicnn-mtt_musicnn"  # a file name under bench/results/parts/
    assert slug("spec_augment=0.1") == "spec_augment-0-1"


def test_a_block_is_replaced_between_its_markers_only(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("head\n<!-- bench:t:start -->\nold\n<!-- bench:t:end -->\ntail\n")
    update_block(doc, "t", "| new |\n")
    assert doc.read_text() == "head\n<!-- bench:t:start -->\n| new |\n<!-- bench:t:end -->\ntail\n"
    with pytest.raises(ValueError, match="no <!-- bench:other:start --> ... <!-- bench:other:end --> block"):
        check_block(doc, "other")
