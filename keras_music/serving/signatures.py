"""The serving signatures of each kind of model, and how metadata.json describes them.

Each `*_archive` builds a `keras.export.ExportArchive` of core TensorFlow ops only (no
tensorflow-io op is in any exported graph); the `*_signatures` beside it are the one-line
descriptions that metadata.json lists under `signatures`, kept next to the graph they describe.

* Sequence emotion taggers (`emotion_archive`): `serving_default` and `embeddings` on the
  named features + `length`, and `serve_audio` on WAV bytes (the recipe's front end, the
  training crop length every `window_hop` frames, logits averaged over the windows by
  `keras_music.scoring`).
* Per-clip emotion taggers (`per_clip_archive`): `serving_default` and `embeddings` on the
  clip's `features` vector.
* Genre models (`genre_archive`): `serving_default` on the raw CSV columns.
"""

from __future__ import annotations

from keras_music.quadrants import QUADRANT_AXES, quadrant_columns
from keras_music.serving import ExportError
from keras_music.training.common import recipe_of, run_features, sequence_config_of

MIN_RATE, MAX_RATE = 8000, 192000

GENRE_SIGNATURES = {"serving_default": "raw CSV columns -> probabilities"}


def embeddings_description(width: int) -> str:
    """What every tagger's `embeddings` output is, as metadata.json says it."""
    return f"embeddings (batch, {width}): the pooled vector before the tag layer (the input of `logits`)"


def emotion_signatures(config: dict, width: int, tag_sets: dict | None = None) -> dict[str, str]:
    """metadata.json's `signatures` of a sequence emotion tagger (`emotion_archive`); `tag_sets`:
    metadata.json's `tag_sets` (`tag_set_metadata`)."""
    inputs = ", ".join([*run_features(config), "length"])
    axes = (", arousal, valence (batch; the share of the quadrant probability on Q1 + Q2 / Q1 + Q4)"
            if quadrant_columns(config["tags"]) else "")
    extra = "".join(f", {name}_probabilities (batch, {len(t['labels'])}; sigmoid of the windows' mean logits), "
                    f"{name}_window_logits (batch, windows, {len(t['labels'])}; zero-padded)"
                    for name, t in (tag_sets or {}).items())
    return {"serving_default": f"{inputs} -> probabilities, logits",
            "embeddings": f"{inputs} -> {embeddings_description(width)}",
            "serve_audio": "audio (WAV bytes) -> probabilities, logits (mean "
                           "of the windows), window_logits (batch, windows, tags; "
                           "zero-padded), window_count, embeddings (batch, "
                           f"{width}; mean of the windows), window_embeddings "
                           f"(batch, windows, {width}; zero-padded){axes}{extra}"}


def tag_set_metadata(tag_sets: list) -> dict:
    """metadata.json's `tag_sets`: for each `TagSet` its labels, how a person reads each (group and
    name shown) and who trained it."""
    return {t.name: {"labels": list(t.labels), "groups": [group for group, _ in t.readings],
                     "names": [name for _, name in t.readings], "source": t.source} for t in tag_sets}


def per_clip_signatures(width: int) -> dict[str, str]:
    """metadata.json's `signatures` of a per-clip emotion tagger (`per_clip_archive`)."""
    return {"serving_default": "features (one vector per clip: the training data's "
                               "aggregated features) -> probabilities, logits",
            "embeddings": f"features -> {embeddings_description(width)}"}


def emotion_archive(model, config: dict, tag_sets: list | None = None):
    """ExportArchive with `serving_default` and `embeddings` (features) and `serve_audio` (WAV bytes).

    `tag_sets` (`models.family.TagSet`, from the model's family): more tags from the same pass,
    served by `serve_audio` as `<name>_probabilities` and `<name>_window_logits`. For the 4Q
    quadrant tags `serve_audio` also gives `arousal` and `valence` (`keras_music.quadrants`)."""
    import keras
    import tensorflow as tf

    from keras_music.audio.frontend import AudioFeatures, resample
    from keras_music.models.family import embedding_model
    from keras_music.scoring import clip_windows, mean_logits

    recipe = recipe_of(config)
    features, n_tags = run_features(config), len(config["tags"])
    sequences = sequence_config_of(config)
    window, hop = sequences.crop_frames, sequences.window_hop
    front_end = AudioFeatures(recipe)
    if recipe.feature_dims != features:
        raise ExportError(f"the run's recipe gives features {recipe.feature_dims} (name: width), the model expects "
                          f"{features}.")

    tag_sets = list(tag_sets or [])
    embed = embedding_model(model, with_logits=True)  # the same layers and weights: one pass, all outputs
    if tag_sets:
        embed = keras.Model(model.input, {**embed.output, **{f"{t.name}_logits": t.logits for t in tag_sets}},
                            name=embed.name)
    width = embed.output["embeddings"].shape[-1]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(embed)  # the tag sets' layers are not in `model`
    quadrants = quadrant_columns(config["tags"])

    def outputs(logits):
        return {"probabilities": tf.sigmoid(logits), "logits": logits}

    def serving_default(inputs):
        return outputs(model(inputs, training=False))

    def embeddings(inputs):
        return {"embeddings": embed(inputs, training=False)["embeddings"]}

    # Per window: the tags' logits, the embedding and each tag set's logits (their widths).
    widths = {"logits": n_tags, "embeddings": width, **{f"{t.name}_logits": len(t.labels) for t in tag_sets}}

    def window_outputs(wav_bytes):
        audio, rate = tf.audio.decode_wav(wav_bytes)
        tf.debugging.assert_greater(tf.shape(audio)[0], 0, message="WAV has no samples")
        tf.debugging.assert_greater_equal(rate, MIN_RATE, message=f"sample rate below {MIN_RATE} Hz; the model "
                                          f"expects {recipe.sample_rate} Hz audio (resampled from 8-192 kHz)")
        tf.debugging.assert_less_equal(rate, MAX_RATE, message=f"sample rate above {MAX_RATE} Hz; the model "
                                       f"expects {recipe.sample_rate} Hz audio (resampled from 8-192 kHz)")
        mono = tf.reduce_mean(audio, axis=1)
        samples = tf.cond(tf.equal(rate, recipe.sample_rate), lambda: mono,
                          lambda: resample(mono, tf.cast(rate, tf.float64), recipe.sample_rate))
        clip = {name: values[0] for name, values in front_end(samples[None, :]).items()}
        tf.debugging.assert_greater(tf.shape(clip["mel"])[0], 0, message=f"audio shorter than one analysis frame "
                                    f"({recipe.n_fft} samples at {recipe.sample_rate} Hz)")
        windows = embed(clip_windows(clip, window, hop), training=False)
        return {name: windows[name] for name in widths}

    def serve_audio(audio):
        # Ragged: files have different window counts; padded with zeros for the signature.
        per_window = tf.map_fn(window_outputs, audio, fn_output_signature={
            name: tf.RaggedTensorSpec([None, n], tf.float32, ragged_rank=0) for name, n in widths.items()})
        means = {name: tf.map_fn(mean_logits, per_window[name], fn_output_signature=tf.TensorSpec([n], tf.float32))
                 for name, n in widths.items()}
        served = {**outputs(means["logits"]), "window_logits": per_window["logits"].to_tensor(),
                  "window_count": tf.cast(per_window["logits"].row_lengths(), tf.int32),
                  "embeddings": means["embeddings"], "window_embeddings": per_window["embeddings"].to_tensor()}
        if quadrants:
            probabilities = served["probabilities"]
            total = tf.reduce_sum(probabilities, axis=1)
            for axis, pair in QUADRANT_AXES.items():
                served[axis] = tf.add_n([probabilities[:, quadrants[q]] for q in pair]) / total
        for t in tag_sets:
            served[f"{t.name}_probabilities"] = tf.sigmoid(means[f"{t.name}_logits"])
            served[f"{t.name}_window_logits"] = per_window[f"{t.name}_logits"].to_tensor()
        return served

    feature_inputs = {**{name: tf.TensorSpec([None, None, dims], tf.float32, name=name)
                         for name, dims in features.items()},
                      "length": tf.TensorSpec([None], tf.int32, name="length")}
    archive.add_endpoint("serving_default", serving_default, input_signature=[feature_inputs])
    archive.add_endpoint("embeddings", embeddings, input_signature=[feature_inputs])
    archive.add_endpoint("serve_audio", serve_audio,
                         input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
    return archive


def per_clip_archive(model):
    """ExportArchive of a per-clip tagger: `serving_default` and `embeddings` on its `features` vector."""
    import keras
    import tensorflow as tf

    from keras_music.models.family import embedding_model

    embed = embedding_model(model)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serving_default(features):
        logits = model({"features": features}, training=False)
        return {"probabilities": tf.sigmoid(logits), "logits": logits}

    def embeddings(features):
        return {"embeddings": embed({"features": features}, training=False)}

    spec = tf.TensorSpec([None, model.input["features"].shape[-1]], tf.float32, name="features")
    archive.add_endpoint("serving_default", serving_default, input_signature=[spec])
    archive.add_endpoint("embeddings", embeddings, input_signature=[spec])
    return archive


def genre_archive(model):
    """ExportArchive with `serving_default` on the raw CSV columns."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = {name: tf.TensorSpec([None, 1], tensor.dtype, name=name) for name, tensor in model.input.items()}

    def serving_default(columns):
        return {"probabilities": model(columns, training=False)}

    archive.add_endpoint("serving_default", serving_default, input_signature=[specs])
    return archive
