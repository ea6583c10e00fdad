"""Fixtures for the model tests: save a model as `.keras` and load it back, also as a file written
before the custom layers left `keras_music/models/layers.py`."""

from __future__ import annotations

import json
import zipfile

import keras
import pytest

# Where every custom layer lived when models saved before the split were written.
PRE_SPLIT_MODULE = "keras_music.models.layers"
LAYER_MODULES = ("augmentation", "ensemble_layers", "sequence_layers", "table_layers")


def rewrite_as_pre_split(path):
    """Name `keras_music.models.layers` as the module of every custom layer in the `.keras`
    file's config, as a model saved before the split has it. Returns how many were renamed."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    renamed = 0

    def rename(node):
        nonlocal renamed
        if isinstance(node, dict):
            if node.get("module") in {f"keras_music.models.{m}" for m in LAYER_MODULES}:
                node["module"] = PRE_SPLIT_MODULE
                renamed += 1
            for value in node.values():
                rename(value)
        elif isinstance(node, list):
            for value in node:
                rename(value)

    config = json.loads(entries["config.json"])
    rename(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return renamed


@pytest.fixture
def save_and_load(tmp_path):
    """`save_and_load(model, pre_split=False)`: the model saved to a `.keras` file and loaded back
    (without `custom_objects`: the layers' registration alone must find them). With `pre_split`,
    the file is first rewritten as one saved before the split."""

    def round_trip(model, pre_split=False):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        if pre_split:
            assert rewrite_as_pre_split(path) > 0
        return keras.saving.load_model(path)

    return round_trip


def registered_in(module) -> set[str]:
    """Registered names (`package>Name`) of the objects a module defines."""
    return {name for name, obj in keras.saving.get_custom_objects().items()
            if getattr(obj, "__module__", None) == module.__name__}
