"""KerasTuner search over the registered model families (`python -m tuning.search`).

One HyperModel (`hypermodels.FamilyHyperModel`) serves every family: it maps a trial's
values onto the family's config and calls the training library, so no model is defined
twice. Nothing in `keras_music` imports this package.
"""
