"""`python -m keras_music.collection_report` is `keras-music report`."""

import sys

from keras_music.collection_report import main

sys.exit(main())
