"""Apache Beam pipelines: feature extraction and catalog tagging beyond one machine.

`pip install "keras_music[beam]"`. The same library code as the one-machine commands
(`keras_music.data.extraction`, `keras_music.tagging`) runs inside Beam transforms, so a
pipeline's output is what the local command writes: `extract` builds the same feature
store, `tag` writes the same rows as `predict`. Beam does the scheduling, retries and
scaling (DirectRunner here; Dataflow, Flink or Spark with their pipeline options).

    python -m keras_music.extract music/ --out stores/music --runner DirectRunner --direct_num_workers 2
    python -m keras_music.beam.tag music/ --model saved_models/emotion_4q --out tags/ --runner DirectRunner
"""

import logging
import sys

INSTALL_HINT = 'Apache Beam is not installed: pip install "keras_music[beam]" (apache-beam>=2.77).'


def require_beam():
    """Import apache_beam, or raise an ImportError that says how to install it.

    Beam's first import warns, through the root logger, about Google Cloud client libraries
    (apitools, BigQuery storage) that these file-only pipelines never use, and that first
    `logging.warning` installs a stderr handler on the root logger, which makes the CLIs' own
    `logging.basicConfig` (plain messages, INFO) a no-op. Both are held back during the import.
    """
    if sys.modules.get("apache_beam") is not None:
        return sys.modules["apache_beam"]
    root = logging.getLogger()
    level, quiet = root.level, logging.NullHandler()  # a handler present: no implicit basicConfig
    root.addHandler(quiet)
    root.setLevel(max(level, logging.ERROR))
    try:
        import apache_beam
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    finally:
        root.removeHandler(quiet)
        root.setLevel(level)
    return apache_beam


def pipeline_options(args: list[str]):
    """Beam's `PipelineOptions` of `args`, refusing any argument Beam does not know either (Beam
    itself drops them with a warning, so a mistyped `--shard_size` would silently do nothing)."""
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(args)
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options()))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join('--' + name for name in unknown)}: neither this command's "
                         "nor a Beam pipeline option (see --help, and Beam's pipeline options).")
    return options


def work_list(pipeline, path, items: list, label: str = "Files"):
    """`items` (JSON values) as a PCollection read from the file `path`, which this writes first.

    `beam.Create` would put every item into the job's request, which runners cap (Dataflow: 10 MB);
    a file read with `ReadFromText` has no such limit. `path` must be where the workers can read
    it (beside the store or the output).
    """
    import json

    beam = require_beam()
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(str(path)) as handle:  # a local path or object storage (gs://...)
        handle.write("".join(json.dumps(item) + "\n" for item in items).encode("utf-8"))
    return (pipeline
            | f"{label}List" >> beam.io.ReadFromText(str(path))
            | label >> beam.Map(lambda line: (lambda v: tuple(v) if isinstance(v, list) else v)(json.loads(line))))
