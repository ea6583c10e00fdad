"""musicnn_lstm: musicnn's pretrained front and mid end, fine-tuned, under our LSTM head.

musicnn's timbral/temporal filters and residual 1-D convolutions (`models/musicnn.py`,
MTT or MSD weights) give 753 values per frame; instead of musicnn's global pooling, our
recurrent head (`blocks.recurrent_head`: LSTM, max over real frames, dense, `logits`)
reads them, and the convolutions train on with it at a low learning rate. Batch norms keep
musicnn's statistics (inference mode), the usual practice when fine-tuning on little data.
The masked loss and per-tag metrics are every tagger's.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_music.models.blocks import recurrent_head, sequence_inputs
from keras_music.models.compile import compile_tagger
from keras_music.models.family import DROPOUT, ModelFamily
from keras_music.models.musicnn import WEIGHTS, load_pretrained, musicnn_body
from keras_music.models.musicnn_head import MUSICNN_SEQUENCES, check_musicnn_inputs


@dataclasses.dataclass(frozen=True)
class MusicnnLSTMConfig:
    """musicnn's front and mid end (fine-tuned or frozen) under an LSTM head.

    Args:
        weights: str. `MSD_musicnn` (its tags include moods) or `MTT_musicnn`.
        fine_tune: bool. Train musicnn's convolutions too (batch norms stay frozen).
        lstm_units: int. LSTM width.
        head_units: int. Hidden width after max over time.
        dropout: float. Dropout on the frames and before the logits.
        learning_rate: float. Adam learning rate, low enough not to wash out the pretrained filters.
    """

    weights: str = "MSD_musicnn"
    fine_tune: bool = True
    lstm_units: int = 64
    head_units: int = 64
    dropout: float = 0.3
    learning_rate: float = 3e-4

    def __post_init__(self):
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}.")


def build_musicnn_lstm(config: MusicnnLSTMConfig, tags: list[str], inputs: dict[str, int],
                       stats: dict | None = None) -> keras.Model:
    """Compiled tagger: musicnn front + mid end -> dropout -> LSTM head -> `logits`."""
    check_musicnn_inputs(inputs, "musicnn_lstm")
    model_inputs = sequence_inputs(inputs)
    body = musicnn_body(model_inputs["mel"], model_inputs["length"], prefix="musicnn_")
    frames = body["midend"]
    if config.dropout:
        frames = keras.layers.Dropout(config.dropout, name="frame_dropout")(frames)
    logits = recurrent_head(frames, body["mask"], config.lstm_units, config.head_units, config.dropout, len(tags))
    model = keras.Model(model_inputs, logits, name="musicnn_lstm")
    for name in load_pretrained(model, config.weights, prefix="musicnn_"):
        layer = model.get_layer(name)
        layer.trainable = config.fine_tune and not isinstance(layer, keras.layers.BatchNormalization)
    return compile_tagger(model, tags, config.learning_rate)


FAMILY = ModelFamily(
    name="musicnn_lstm",
    task="emotion",
    inputs="sequences",
    config=MusicnnLSTMConfig,
    build=build_musicnn_lstm,
    summary="tags from musicnn's pretrained front end (fine-tuned) under an LSTM, max over time",
    space={
        "weights": {"type": "choice", "values": list(WEIGHTS)},
        "lstm_units": {"type": "choice", "values": [32, 64, 128]},
        "head_units": {"type": "choice", "values": [32, 64, 128]},
        "dropout": DROPOUT,
        "learning_rate": {"type": "float", "min": 3e-5, "max": 3e-3, "sampling": "log"},
    },
    recipe="musicnn",
    sequences=MUSICNN_SEQUENCES,
)
