"""TF Serving's warm-up records (`assets.extra/tf_serving_warmup_requests`).

TF Serving replays these `PredictionLog` records when it loads a version, so the first real
request does not pay for tracing and allocation. One small valid request per signature;
the records are protobuf, encoded here by hand so the export needs no tensorflow-serving-api
package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_music.training.common import is_per_clip, recipe_of, run_features, sequence_config_of


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def prediction_log(model_name: str, signature: str, inputs: dict) -> bytes:
    """A serialized `tensorflow.serving.PredictionLog` holding one PredictRequest.

    Field numbers from tensorflow_serving/apis: PredictionLog.predict_log = 6,
    PredictLog.request = 1, PredictRequest.model_spec = 1 / inputs = 2 (map entries:
    key = 1, value = 2), ModelSpec.name = 1 / signature_name = 3. Hand-encoded so the
    export needs no tensorflow-serving-api package.
    """
    import tensorflow as tf

    spec = _field(1, model_name.encode()) + _field(3, signature.encode())
    request = _field(1, spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_inputs(model, config: dict) -> list[tuple[str, dict]]:
    """Small valid requests for each signature: (signature name, inputs)."""
    from keras_music.audio.decoding import wav_bytes

    rng = np.random.default_rng(0)
    if config["task"] == "emotion" and is_per_clip(config):
        features = {"features": np.zeros((1, model.input["features"].shape[-1]), "float32")}
        return [("serving_default", features), ("embeddings", features)]
    if config["task"] == "genre":
        columns = {}
        for name, tensor in model.input.items():
            columns[name] = (np.array([[b"unknown artist"]]) if tensor.dtype == "string"
                             else np.zeros((1, 1), "float32"))
        return [("serving_default", columns)]
    frames = sequence_config_of(config).crop_frames or 64
    rate = recipe_of(config).sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate) + 0.01 * rng.standard_normal(3 * rate)
    windows = {name: rng.normal(0, 10, (1, frames, width)).astype("float32")
               for name, width in run_features(config).items()}
    inputs = {**windows, "length": np.array([frames], "int32")}
    return [("serving_default", inputs), ("embeddings", inputs),
            ("serve_audio", {"audio": np.array([wav_bytes(tone, rate)], dtype=object)})]


def write_warmup_requests(path: Path, model_name: str, model, config: dict) -> None:
    """`path` as a TFRecord file of one `prediction_log` per `warmup_inputs` request."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in warmup_inputs(model, config):
            writer.write(prediction_log(model_name, signature, inputs))
