"""KerasTuner search over the keras_music builders (`python -m tuning.search`, to come).

HyperModels here only map hyperparameters onto the package's config dataclasses and call
the same builders as `keras_music.train`; no model is defined twice.
"""
