"""Model families, one module each (config dataclass, builder, `FAMILY`), listed in
`registry.py`; `family.py` says what a family entry holds; custom layers in `table_layers.py`,
`ensemble_layers.py`, `sequence_layers.py` and `augmentation.py`; builder helpers in
`blocks.py`; compiling in `compile.py`.

Importing this package registers every custom layer, loss and metric a saved keras_music
model can hold, so `keras.saving.load_model(path)` needs no `custom_objects`.
"""

from keras_music import losses, metrics  # noqa: F401  (registration side effect)
from keras_music.audio import frontend  # noqa: F401  (registers AudioFeatures, LogMel, MFCC)
from keras_music.models import augmentation, ensemble_layers, sequence_layers, table_layers  # noqa: F401
from keras_music.models.registry import REGISTRY, families, get_family  # noqa: F401
