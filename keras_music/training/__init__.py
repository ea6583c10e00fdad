"""Training as a library: what `python -m keras_music.train`, `tuning/` and `bench/` call.

    genre.py    split by song, the genre MLP ensemble (`fit_genre_mlp`), `train_genre`
    emotion.py  split by artist, `build_tagger` for any registered family, `train_emotion`
    common.py   the run folder's model file, run identity, one-line epoch summaries

Resumable backups live in `keras_music.resume`, the multi-worker loop in
`keras_music.multiworker`; both are used from here only.
"""

from keras_music.config import EMOTION_TRAINING, GENRE_TRAINING  # noqa: F401  (each task's defaults)
from keras_music.training.common import epoch_summary, print_epoch, run_identity, save_model  # noqa: F401
from keras_music.training.emotion import (  # noqa: F401
    TaggerFit,
    build_tagger,
    describe,
    emotion_split,
    train_emotion,
)
from keras_music.training.genre import (  # noqa: F401
    GenreFit,
    average_models,
    class_weights,
    fit_genre_mlp,
    genre_split,
    load_genre_data,
    train_genre,
)
