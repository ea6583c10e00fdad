"""Model families, one module each (config dataclass, builder, `FAMILY`), listed in
`registry.py`; `family.py` says what a family entry holds; shared blocks in `layers.py`.

Importing this package registers every custom layer, loss and metric a saved keras_music
model can hold, so `keras.saving.load_model(path)` needs no `custom_objects`.
"""

from keras_music import losses, metrics  # noqa: F401  (registration side effect)
from keras_music.audio import frontend  # noqa: F401  (registers AudioFeatures, LogMel, MFCC)
from keras_music.models import layers  # noqa: F401
from keras_music.models.registry import REGISTRY, families, get_family  # noqa: F401
