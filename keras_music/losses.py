"""Masked binary cross-entropy: unknown label cells contribute nothing.

The paper counted unknown emotions (neither X nor NOT-X agreed) as negatives; here the
known-cell mask travels as `sample_weight` (the tf.data streams yield
`(inputs, labels, mask)`), and the mean is over known cells only.
"""

from __future__ import annotations

import keras
from keras import ops


def masked_binary_crossentropy(y_true, y_pred, mask, from_logits: bool = True):
    """Mean binary cross-entropy over the cells where `mask` is 1.

    Formula:
    ```
    loss = sum(mask * bce(y_true, y_pred)) / sum(mask)    (0 when sum(mask) == 0)
    ```

    Args:
        y_true: `(batch, tags)` 0/1 labels (values under mask 0 are ignored).
        y_pred: `(batch, tags)` logits (or probabilities with `from_logits=False`).
        mask: `(batch, tags)` 1 = known cell, 0 = unknown.
        from_logits: bool. Defaults to `True`.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    mask = ops.cast(mask, y_pred.dtype)
    cells = ops.binary_crossentropy(y_true, y_pred, from_logits=from_logits)
    return ops.divide_no_nan(ops.sum(cells * mask), ops.sum(mask))


@keras.saving.register_keras_serializable(package="keras_music")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """`masked_binary_crossentropy` as a Keras loss; the mask arrives as `sample_weight`.

    `call` returns per-cell losses `(batch, tags)`; Keras multiplies them by the
    `(batch, tags)` sample weight and the `mean_with_sample_weight` reduction divides by
    the number of known cells (0, not NaN, for a batch without any). Without a sample
    weight every cell counts.

    Args:
        from_logits: bool. Whether `y_pred` are logits. Defaults to `True`.

    Examples:

    >>> loss = MaskedBinaryCrossentropy()
    >>> float(loss([[1.0, 0.0]], [[2.0, 9.0]], sample_weight=[[1.0, 0.0]]))  # only the first cell
    0.12692...
    """

    def __init__(self, from_logits=True, name="masked_binary_crossentropy", reduction="mean_with_sample_weight",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class MemberCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of every member of an ensemble trained in one network (TabM):
    `y_true` `(batch, classes)`, `y_pred` the members' probabilities `(batch, members, classes)`;
    the per-row loss is the mean over members, so each member learns on its own (the loss of
    their mean would let them lean on each other).

    Args:
        label_smoothing: float. As in `keras.losses.CategoricalCrossentropy`.
    """

    def __init__(self, label_smoothing: float = 0.0, name="member_crossentropy", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.broadcast_to(ops.expand_dims(ops.cast(y_true, y_pred.dtype), 1), ops.shape(y_pred))
        per_member = keras.losses.categorical_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)
        return ops.mean(per_member, axis=1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
