"""keras_music: learn genre and emotion tags from audio features with Keras 3."""

__version__ = "0.1.0"
