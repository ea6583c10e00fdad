"""Apache Beam pipelines: feature extraction and catalog tagging beyond one machine.

`pip install "keras_music[beam]"`. The same library code as the one-machine commands
(`keras_music.data.extraction`, `keras_music.predict`) runs inside Beam transforms, so a
pipeline's output is what the local command writes: `extract` builds the same feature
store, `tag` writes the same rows as `predict`. Beam does the scheduling, retries and
scaling (DirectRunner here; Dataflow, Flink or Spark with their pipeline options).

    python -m keras_music.extract music/ --out stores/music --runner DirectRunner --direct_num_workers 2
    python -m keras_music.predict music/ --model saved_models/emotion_4q --out tags.jsonl --runner DirectRunner
"""

INSTALL_HINT = 'Apache Beam is not installed: pip install "keras_music[beam]" (apache-beam>=2.77).'


def require_beam():
    """Import apache_beam, or raise an ImportError that says how to install it."""
    try:
        import apache_beam
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return apache_beam
