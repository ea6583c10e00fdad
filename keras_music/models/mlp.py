"""MLPs on tables: the genre classifier and the per-clip tag classifier (`build_tag_mlp`).

Genre MLP: raw table columns in, class probabilities out.

All preprocessing (imputation with missing flags, standardisation, piecewise-linear
bins, category one-hot, artist lookup + embedding) is made of Keras layers whose constants are adapted on the
training split, so the saved model scores a raw CSV row and needs no side files.

Examples:

```python
frame = load_genre_csv("train.csv")
split = split_by_song(frame, seed=0, validation_fraction=0.1, test_fraction=0.1)
train = frame.iloc[split.train]
config = GenreMLPConfig(feature_set="seed")
model = build_genre_mlp(config, fit_genre_preprocessing(train, config), num_classes=11)
model.fit(genre_dataset(train, config.feature_set, batch_size=64, num_classes=11, shuffle=True, seed=0))
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import keras
import tensorflow as tf

from keras_music.config import EmotionModelConfig, GenreMLPConfig
from keras_music.data.genre import CATEGORICAL, FEATURE_SETS, MISSING_KEY, NULLABLE, feature_columns
from keras_music.models.layers import (
    CategoryCodes,
    NanImputer,
    PiecewiseLinearEncoding,
    RandomOOV,
    compile_tagger,
    dense_block,
)


def fit_genre_preprocessing(train: pd.DataFrame, config: GenreMLPConfig) -> dict:
    """Constants of the in-model preprocessing, computed on training rows only.

    Returns a JSON-ready dict: per-numeric-column median fill values and missing flags,
    mean and variance of the imputed (+flags) vector, quantile bin edges, the vocabulary
    of each categorical column, and (for `full`) the artist vocabulary.
    """
    feature_set, bins = config.feature_set, config.numeric_bins
    groups = FEATURE_SETS[feature_set]
    numeric = list(groups["numeric"])
    fill = [float(np.nanmedian(train[c].to_numpy(dtype="float64"))) for c in numeric]
    indicator = [c in NULLABLE for c in numeric]
    values = train[numeric].to_numpy(dtype="float64")
    filled = np.where(np.isnan(values), np.asarray(fill), values)
    flags = np.isnan(values[:, indicator]).astype("float64")
    matrix = np.concatenate([filled, flags], axis=1)
    stats = {
        "feature_set": feature_set,
        "numeric": numeric,
        "fill_values": fill,
        "indicator": indicator,
        "mean": matrix.mean(axis=0).tolist(),
        # Constant columns (e.g. a flag never set in training) get variance 1, not 0.
        "variance": np.where(matrix.var(axis=0) > 0, matrix.var(axis=0), 1.0).tolist(),
        "categories": {
            c: sorted({int(v) for v in train[c].fillna(MISSING_KEY)})
            for c in groups["categorical"]
        },
    }
    if bins:
        # Quantile bin edges per column: piecewise encodings let an MLP cut where trees cut.
        quantiles = np.linspace(0, 1, bins + 1)
        stats["bin_edges"] = [
            sorted(set(np.quantile(filled[:, i], quantiles).round(6).tolist())) for i in range(len(numeric))
        ]
    if "artist_name" in groups["text"]:
        stats["artists"] = sorted(train["artist_name"].unique().tolist())
    return stats


def genre_inputs(feature_set: str) -> dict[str, keras.KerasTensor]:
    """One named `(batch, 1)` input per raw column of the feature set."""
    return {
        name: keras.Input(shape=(1,), dtype="string" if name == "artist_name" else "float32", name=name)
        for name in feature_columns(feature_set)
    }


def build_genre_mlp(config: GenreMLPConfig, preprocessing: dict, num_classes: int,
                    name: str = "genre_mlp") -> keras.Model:
    """Functional genre MLP with in-model preprocessing, compiled with Adam.

    Args:
        config: GenreMLPConfig. Feature set, hidden sizes, dropout, learning rate.
        preprocessing: dict. Output of `fit_genre_preprocessing` for the same feature set.
        num_classes: int. Number of genres (softmax width).
        name: str. Model name (ensemble members get distinct names). Defaults to `genre_mlp`.

    Returns:
        A compiled `keras.Model` named `genre_mlp`; inputs are a dict of raw columns,
        output `probabilities` of shape `(batch, num_classes)`.
    """
    if preprocessing["feature_set"] != config.feature_set:
        raise ValueError(
            f"preprocessing was fitted for feature set {preprocessing['feature_set']!r}, "
            f"but the config asks for {config.feature_set!r}; refit it on the training rows."
        )
    inputs = genre_inputs(config.feature_set)

    numeric = keras.layers.Concatenate(name="numeric_columns")([inputs[c] for c in preprocessing["numeric"]])
    numeric = NanImputer(preprocessing["fill_values"], preprocessing["indicator"], name="impute")(numeric)
    parts = [keras.layers.Normalization(mean=preprocessing["mean"], variance=preprocessing["variance"],
                                        name="standardise")(numeric)]
    for i, edges in enumerate(preprocessing.get("bin_edges", [])):
        if len(edges) < 2:  # a constant column in training: nothing to cut
            continue
        column = preprocessing["numeric"][i]
        value = NanImputer([preprocessing["fill_values"][i]], name=f"{column}_fill")(inputs[column])
        parts.append(PiecewiseLinearEncoding(edges, name=f"{column}_bins")(value))
    for column in CATEGORICAL:
        codes = CategoryCodes(MISSING_KEY, name=f"{column}_codes")(inputs[column])
        parts.append(keras.layers.IntegerLookup(vocabulary=preprocessing["categories"][column],
                                                output_mode="one_hot", name=f"{column}_one_hot")(codes))
    artist_bias = None
    if "artists" in preprocessing:
        ids = keras.layers.StringLookup(vocabulary=preprocessing["artists"], num_oov_indices=1,
                                        name="artist_lookup")(inputs["artist_name"])
        ids = RandomOOV(config.artist_oov_rate, oov_index=0, name="artist_dropout")(ids)
        n_ids = len(preprocessing["artists"]) + 1
        regulariser = keras.regularizers.L2(config.artist_l2) if config.artist_l2 else None
        if config.artist_embedding_dim:
            embedded = keras.layers.Embedding(n_ids, config.artist_embedding_dim,
                                              embeddings_regularizer=regulariser, name="artist_embedding")(ids)
            parts.append(keras.layers.Flatten(name="artist_vector")(embedded))
        if config.artist_bias:
            # Wide path: a shrunken per-artist logit offset, the neural analogue of target encoding.
            bias = keras.layers.Embedding(n_ids, num_classes, embeddings_initializer="zeros",
                                          embeddings_regularizer=regulariser, name="artist_bias")(ids)
            artist_bias = keras.layers.Flatten(name="artist_logit_offset")(bias)

    x = keras.layers.Concatenate(name="features")(parts)
    x = dense_block(x, config.hidden_units, config.dropout, name="hidden")
    logits = keras.layers.Dense(num_classes, name="deep_logits" if artist_bias is not None else "logits")(x)
    if artist_bias is not None:
        logits = keras.layers.Add(name="logits")([logits, artist_bias])
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inputs, probabilities, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def genre_dataset(frame: pd.DataFrame, feature_set: str, batch_size: int, num_classes: int | None = None,
                  shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """tf.data of `(dict of (batch, 1) columns, one-hot labels)`; labels omitted if `num_classes` is None."""
    columns = {
        name: frame[name].to_numpy(dtype=str if name == "artist_name" else "float32").reshape(-1, 1)
        for name in feature_columns(feature_set)
    }
    if num_classes is None:
        dataset = tf.data.Dataset.from_tensor_slices(columns)
    else:
        labels = np.eye(num_classes, dtype="float32")[frame["label"].to_numpy()]
        dataset = tf.data.Dataset.from_tensor_slices((columns, labels))
    if shuffle:
        dataset = dataset.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_tag_mlp(config: EmotionModelConfig, tags: list[str], stats: dict, num_features: int) -> keras.Model:
    """Compiled multi-label tagger on one feature vector per clip (e.g. CAL500's 68 MULAN features,
    or the mean + std over time of mel and MFCC bands).

    Args:
        config: EmotionModelConfig. `head_units` (two hidden ReLU layers), `dropout`, `input_noise`,
            `l2`, `learning_rate`.
        tags: list of str. One logit per tag, metrics named after them.
        stats: dict. `mean` and `std` of each feature over the training clips (standardised
            inside the model).
        num_features: int. Vector size.

    Returns:
        A `keras.Model` named `tag_mlp`: input `features` `(batch, num_features)`, output `logits`.
    """
    inputs = {"features": keras.Input(shape=(num_features,), name="features")}
    variance = [float(s) ** 2 if s > 0 else 1.0 for s in stats["std"]]
    x = keras.layers.Normalization(mean=list(map(float, stats["mean"])), variance=variance,
                                   name="standardise")(inputs["features"])
    if config.input_noise:
        x = keras.layers.GaussianNoise(config.input_noise, name="input_noise")(x)
    x = dense_block(x, (config.head_units, config.head_units), config.dropout, name="hidden", l2=config.l2)
    logits = keras.layers.Dense(len(tags), name="logits")(x)
    return compile_tagger(keras.Model(inputs, logits, name="tag_mlp"), tags, config.learning_rate)
