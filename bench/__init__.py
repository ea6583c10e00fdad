"""Benchmarks of keras_music (`python -m bench.<name>`, run from a checkout): tables + JSON in bench/results.

They run on the public datasets beside the checkout (`../shared/datasets`), so dataset names
such as `--data mer4q` resolve there unless `$KERAS_MUSIC_DATASETS` says otherwise.
"""

import os
from pathlib import Path

_SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if _SHARED_DATASETS.is_dir():
    os.environ.setdefault("KERAS_MUSIC_DATASETS", str(_SHARED_DATASETS))
