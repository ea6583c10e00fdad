"""Configs round-trip through JSON and reject unknown fields by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_music.config import TrainingConfig, config_from_dict, config_to_dict, save_json
from keras_music.models.genre_mlp import GenreMLPConfig
from keras_music.training import class_weights


@pytest.mark.parametrize("config", [GenreMLPConfig(hidden_units=(8, 4), feature_set="seed"), TrainingConfig(seed=7)])
def test_json_round_trip(config, tmp_path):
    save_json(tmp_path / "c.json", config_to_dict(config))
    restored = config_from_dict(type(config), json.loads((tmp_path / "c.json").read_text()))
    assert restored == config
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"unknown GenreMLPConfig field\(s\) \['hidden_size'\]"):
        config_from_dict(GenreMLPConfig, {"hidden_size": 3}, source="best.json")


def test_class_weights_lift_rare_classes():
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, num_classes=3, power=1.0)
    assert weights[1] == pytest.approx(5.0) and weights[0] == pytest.approx(50 / 90)
    assert weights[2] == 1.0  # absent from training: left alone
    assert class_weights(labels, 3, power=0.0) is None
