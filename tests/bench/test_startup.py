"""bench.startup: reads the first epoch's seconds from the CLI's own epoch line; refuses a baseline that is
no checkout."""

from __future__ import annotations

import sys

import pytest

from bench.startup import FIRST_EPOCH, main
from keras_music.training.common import print_epoch


def test_the_first_epoch_is_read_from_the_line_the_cli_prints(capsys):
    print("epoch 1/60  loss 0.7  (3.0 s)", file=sys.stderr)  # another run length: not read
    print_epoch(0, 1, {"loss": 0.51, "val_loss": 0.49, "val_macro_auc": 0.61}, 7.34)
    match = FIRST_EPOCH.search(capsys.readouterr().err)
    assert match is not None and float(match.group(1)) == 7.3


def test_a_baseline_that_is_not_a_checkout_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--baseline-repo", str(tmp_path)])
    assert exit.value.code == 2 and "no keras_music/train.py there" in capsys.readouterr().err
