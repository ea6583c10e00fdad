"""Models that ship with the package, by name (`Tagger.from_preset("emotion_4q")`).

A preset ships as its trained run without the pretrained front end's weights: `run/` holds
the config, report, the head's weights and the export's thresholds. First use builds the TF
Serving export from it (the family's builder loads the front end's weights), offline, into
`$KERAS_MUSIC_CACHE/models/<name>-<digest>/`, so a new package version or a rebuilt model
gets a folder of its own. `python -m keras_music.default_model` makes what ships.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from keras_music.config import DEFAULT_EMOTION_MODEL, cache_dir
from keras_music.errors import ParameterError
from keras_music.serving import EXPORT_FORMAT
from keras_music.version import __version__

logger = logging.getLogger(__name__)

HEAD_WEIGHTS = "head.weights.h5"
RUN_FILES = ("config.json", "report.json", "thresholds.json", HEAD_WEIGHTS)  # what a preset's `run/` holds

@dataclasses.dataclass(frozen=True)
class Preset:
    """A packaged model: its folder (holding `run/`), one line for people, and how its export scores
    files (`window_hop`: windows every so many frames; None: the run's own hop)."""

    folder: Path
    description: str
    window_hop: int | None = None


# The packaged 4Q model scores a 3 s window every 6 s (372 frames): 6 windows per 30 s clip instead
# of the 20 of its training hop (93), about 3.3x faster for -0.006 +- 0.019 accuracy over 5 artist
# folds x 2 seeds (bench.tagger_speed; docs/benchmarks.md). `emotion_4q_dense` scores every 1.5 s.
PRESETS = {
    "emotion_4q": Preset(DEFAULT_EMOTION_MODEL,
                         "4Q music emotion (Russell quadrants, arousal and valence) and musicnn's genre, mood, "
                         "instrument and era tags from audio: musicnn + a head trained on the 4Q clips, a 3 s "
                         "window every 6 s; research use only (see its MODEL_CARD.md)", window_hop=372),
    "emotion_4q_dense": Preset(DEFAULT_EMOTION_MODEL,
                               "the same model scoring a 3 s window every 1.5 s, as it was trained: about 3x "
                               "slower, 0.006 more accuracy on the 4Q artist folds", window_hop=93),
}
DEFAULT_PRESET = "emotion_4q"


def preset_names() -> list[str]:
    """The names `Tagger.from_preset` takes."""
    return sorted(PRESETS)


def rebuild(folder: Path):
    """`(model, config)` of a packaged `run/` folder: the family built from its config (the build
    loads the front end's pretrained weights) with the head's trained weights loaded."""
    from keras_music.config import config_from_dict
    from keras_music.models.registry import family_of_run
    from keras_music.training.common import run_features
    from keras_music.training.frozen import split_at

    config = json.loads((folder / "config.json").read_text())
    family = family_of_run(config)
    model_config = config_from_dict(family.config, config["model_config"], source=str(folder / "config.json"))
    model = family.build(model_config, config["tags"], run_features(config), None)
    split_at(model, family.frozen_output)[1].load_weights(folder / HEAD_WEIGHTS)
    return model, config


def installed(name: str = DEFAULT_PRESET, packaged: Path | None = None) -> Path:
    """The export (version folder) of preset `name`, built on first use (offline, about 20 s on 2
    cores for `emotion_4q`). `packaged`: another folder laid out as the packaged one (tests, builds)."""
    folder = run_folder(name, packaged)
    digest = hashlib.sha256(f"{__version__} {EXPORT_FORMAT} {PRESETS[name].window_hop}".encode())
    for file in RUN_FILES:
        digest.update((folder / file).read_bytes())
    base = cache_dir() / "models" / f"{name}-{digest.hexdigest()[:16]}"
    version = base / name / "1"
    if (version / "saved_model.pb").is_file():
        return version
    logger.info("First use of the packaged model %s: building it from %s and its front end's weights into %s "
                "(once, offline).", name, folder, base)
    return build(name, base, packaged=packaged)


def run_folder(name: str, packaged: Path | None = None) -> Path:
    """The shipped `run/` folder of preset `name` (or of `packaged`), checked to be whole."""
    if name not in PRESETS:
        raise ParameterError("name", name, f"no such preset; the presets are {', '.join(preset_names())}.")
    folder = Path(packaged or PRESETS[name].folder) / "run"
    missing = [file for file in RUN_FILES if not (folder / file).is_file()]
    if missing:
        raise FileNotFoundError(f"the packaged model {name!r} is incomplete: {folder} lacks {', '.join(missing)} "
                                "(build it with `python -m keras_music.default_model --audio AUDIO --labels LABELS`, "
                                "or pass an export of your own).")
    return folder


def build(name: str, base: Path, packaged: Path | None = None, window_hop: int | None = None) -> Path:
    """Export preset `name` as version 1 of `base/name/` (offline): its shipped run rebuilt with the front
    end's weights, its shipped thresholds, scoring windows every `window_hop` frames (default: the
    preset's). Returns the version folder. `bench.predict` also builds older scoring settings with it."""
    from keras_music.tf_logging import import_tensorflow

    import_tensorflow()  # before the builders below load it: without its C++ start-up lines
    from keras_music.export import export_run
    from keras_music.serving import ExportError
    from keras_music.training.common import save_model

    folder = run_folder(name, packaged)
    version = Path(base) / name / "1"
    model, _ = rebuild(folder)
    shipped = json.loads((folder / "thresholds.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        save_model(model, run)
        for file in ("config.json", "report.json"):
            shutil.copyfile(folder / file, run / file)
        try:
            export_run(run, name, base, version=1, thresholds=(shipped["thresholds"], shipped["source"]),
                       window_hop=window_hop or PRESETS[name].window_hop)
        except ExportError:
            if not (version / "saved_model.pb").is_file():  # not just another process finishing first
                raise
    return version
