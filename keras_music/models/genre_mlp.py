"""Genre MLP: raw table columns in, class probabilities out.

All preprocessing (imputation with missing flags, standardisation, piecewise-linear
bins, category one-hot, artist lookup + embedding) is made of Keras layers whose
constants are adapted on the training split (`keras_music.data.genre.fit_genre_preprocessing`),
so the saved model scores a raw CSV row and needs no side files.

Examples:

```python
frame = load_genre_csv("train.csv")
split = split_by_song(frame, seed=0, validation_fraction=0.1, test_fraction=0.1)
train = frame.iloc[split.train]
config = GenreMLPConfig(feature_set="seed")
preprocessing = fit_genre_preprocessing(train, config.feature_set, config.numeric_bins)
model = build_genre_mlp(config, preprocessing, num_classes=11)
model.fit(genre_dataset(train, config.feature_set, batch_size=64, num_classes=11, shuffle=True, seed=0))
```
"""

from __future__ import annotations

import dataclasses

import keras

from keras_music.data.genre import CATEGORICAL, MISSING_KEY, feature_columns
from keras_music.models.blocks import dense_block
from keras_music.models.compile import build_optimizer
from keras_music.models.ensemble_layers import EnsembleDense, EnsembleInput, MemberMean
from keras_music.models.family import DROPOUT, LEARNING_RATE, ModelFamily, layer_widths
from keras_music.models.table_layers import CategoryCodes, NanImputer, PiecewiseLinearEncoding, RandomOOV

MEMBERS_LAYER = "member_probabilities"  # (batch, heads, classes) of a model with heads > 1


@dataclasses.dataclass(frozen=True)
class GenreMLPConfig:
    """The genre MLP: which columns it sees and its hidden layers.

    Args:
        feature_set: str. `seed` (the paper's columns) or `full` (adds popularity and the
            artist). Defaults to `full`.
        hidden_units: tuple of int. Width of each hidden ReLU layer.
        dropout: float. Dropout after each hidden layer.
        numeric_bins: int. Quantile bins of the piecewise-linear encoding added beside
            each standardised numeric column (0 = standardised values only).
        artist_embedding_dim: int. Size of the artist embedding (`full` only).
        artist_oov_rate: float. Training-time rate at which an artist is replaced by the
            out-of-vocabulary id, so unseen artists get a trained fallback.
        artist_bias: bool. Add a per-artist offset to the logits (wide path), the neural
            counterpart of target encoding.
        artist_l2: float. L2 penalty on the artist tables; shrinks rare artists to the prior.
        learning_rate: float. Adam learning rate.
        label_smoothing: float. Label smoothing of the cross-entropy; many tracks carry
            more than one genre in the data, so hard 0/1 targets overstate certainty.
        class_weight_power: float. Class weights `(mean count / class count) ** power`:
            0 = none, 1 = fully balanced. A little lifts the rare genres (macro-F1)
            at almost no cost in accuracy.
        ensemble_size: int. Networks trained with consecutive seeds and averaged into one
            saved model. Defaults to 1: the heads already ensemble, at a fraction of the cost.
        heads: int. Members of an ensemble inside one network, trained together in one pass
            (TabM-mini, Gorishniy et al. 2024): each sees the features scaled by its own
            vector, the hidden layers are shared, each has its own output layer and loss, and
            the model outputs their mean. 1 = one plain MLP. The default, 8 heads of 512-256,
            beats 3 separate MLPs of 1024-512 and HistGradientBoosting on 5 folds by song in
            about a fifth of the former's time (docs/benchmarks.md, genre results).
    """

    feature_set: str = "full"
    hidden_units: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    numeric_bins: int = 16
    artist_embedding_dim: int = 16
    artist_oov_rate: float = 0.4
    artist_bias: bool = True
    artist_l2: float = 0.0
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    class_weight_power: float = 0.3
    ensemble_size: int = 1
    heads: int = 8

    def __post_init__(self):
        if self.heads < 1 or self.ensemble_size < 1:
            raise ValueError(f"heads and ensemble_size must be at least 1, got {self.heads} and {self.ensemble_size}.")


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
    members = config.heads > 1
    if members:
        x = EnsembleInput(config.heads, name="member_views")(x)
    x = dense_block(x, config.hidden_units, config.dropout, name="hidden")
    output_layer = EnsembleDense if members else keras.layers.Dense
    logits = output_layer(num_classes, name="deep_logits" if artist_bias is not None else "logits")(x)
    if artist_bias is not None:
        if members:  # the same artist offset for every member
            artist_bias = keras.layers.Reshape((1, num_classes), name="artist_offset_per_member")(artist_bias)
        logits = keras.layers.Add(name="logits")([logits, artist_bias])
    if members:
        member_probabilities = keras.layers.Softmax(name=MEMBERS_LAYER)(logits)
        probabilities = MemberMean(name="probabilities")(member_probabilities)
    else:
        probabilities = keras.layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inputs, probabilities, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model if members else build_optimizer(model)  # members: `training_model` is what trains


def training_model(model: keras.Model, config: GenreMLPConfig) -> keras.Model:
    """What `fit` trains: the model itself, or with `heads` > 1 the view of its members'
    probabilities (same layers), compiled with the per-member loss and the accuracy of their
    mean (`accuracy`, so early stopping reads `val_accuracy` either way)."""
    if config.heads == 1:
        return model
    from keras_music.losses import MemberCrossentropy
    from keras_music.metrics import member_mean_accuracy

    members = keras.Model(model.inputs, model.get_layer(MEMBERS_LAYER).output, name=f"{model.name}_members")
    members.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                    loss=MemberCrossentropy(label_smoothing=config.label_smoothing),
                    metrics=[keras.metrics.MeanMetricWrapper(member_mean_accuracy, name="accuracy")])
    return build_optimizer(members)


# `layers` hidden layers, the first `units` wide, each next one half as wide (at least 8).
_derive, _underive = layer_widths("hidden_units", count="layers", first="units", ratio=0.5, minimum=8)

FAMILY = ModelFamily(
    name="genre_mlp",
    task="genre",
    inputs="table",
    config=GenreMLPConfig,
    build=build_genre_mlp,
    summary="genre classes from the Kaggle table's raw columns (preprocessing inside the model)",
    space={
        "layers": {"type": "int", "min": 1, "max": 3},
        "units": {"type": "choice", "values": [128, 256, 512, 1024]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
        "batch_size": {"type": "choice", "values": [64, 128, 256]},
    },
    derive=_derive,
    underive=_underive,
)
