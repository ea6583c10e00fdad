"""Audio in, named feature frames out, in three modules with different rules.

* `decoding`: files to mono float32 samples at the recipe's rate (soundfile, soxr; no
  TensorFlow, so extraction workers and prediction readers decode without starting it).
* `filterbank`: the librosa-compatible mel filterbank, a numpy constant.
* `frontend`: the TensorFlow/Keras feature front end (`AudioFeatures`), which lives inside
  exported models.

Nothing is imported here, so importing one module does not import the others.
"""
