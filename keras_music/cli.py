"""`keras-music`: one command for every tool of the package (`keras-music <command> --help`).

Each command is the same `main(argv)` that `python -m <module>` runs, so both spellings take
the same arguments and give the same results. Modules are imported only for the command
given, so `keras-music --help` answers at once.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module whose main(argv) runs it, one line for `keras-music --help`)
COMMANDS = {
    "predict": ("keras_music.predict", "Tag audio files and folders with an export (default: the packaged 4Q model)."),
    "report": ("keras_music.collection_report", "Write an interactive HTML page of a tagged collection (moods, curves, similar)."),
    "similar": ("keras_music.similar", "Find the tracks most like a file or song, by the embeddings of a tagging run."),
    "extract": ("keras_music.extract", "Decode a folder of audio into a feature store (resumable; Beam for scale)."),
    "train": ("keras_music.train", "Train a genre or emotion model on a store, a dataset or the demo; export it."),
    "evaluate": ("keras_music.evaluate", "Score a trained run on labelled data (tagging or classification report)."),
    "export": ("keras_music.export", "Write a run as a TF Serving SavedModel (signatures, thresholds, warm-up)."),
    # KerasTuner on top of the package (the `tuning` package, installed beside it; imported by name only here).
    "search": ("tuning.search", "Search hidden sizes and learning rates with KerasTuner (distributed mode too)."),
    "beam-tag": ("keras_music.beam.tag", "Tag a catalogue with an Apache Beam pipeline (pip install keras_music[beam])."),
    "doctor": ("keras_music.doctor", "Check the installation: versions, decoders, musicnn weights, default model."),
    "default-model": ("keras_music.default_model", "Rebuild the packaged 4Q emotion model from the 4Q audio."),
    "musicnn-weights": ("keras_music.musicnn_weights", "Rebuild musicnn's shipped weights, or convert its checkpoints."),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return ("usage: keras-music <command> [arguments]   (keras-music <command> --help for its arguments)\n\n"
            "Learn and tag what music is (genre) and how it feels (emotion) from audio.\n\ncommands:\n"
            + "\n".join(lines) + "\n\nEach command is also `python -m <module> ...` (for example python -m "
            "keras_music.predict).\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from keras_music.version import __version__

        print(f"keras_music {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = [c for c in COMMANDS if c.startswith(name[:3])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        sys.stderr.write(f"keras-music: unknown command {name!r}{hint}\n\n{usage()}")
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as error:  # e.g. `tuning` left out of an install, or a missing extra
        sys.stderr.write(f"keras-music {name}: cannot load {COMMANDS[name][0]} ({error}); reinstall keras_music "
                         "with its extras (for example pip install 'keras_music[beam]').\n")
        return 1
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
