"""Input pipeline vs training speed: is the model ever waiting for data?

    python -m bench.pipeline                      # the shared 4Q features
    python -m bench.pipeline --model mlp_lstm --epochs 3

Writes the 4Q clips into a TFRecord feature store (the format `keras_music.extract`
produces), then times `model.fit` on training crops streamed from the store (parse,
crop, join labels, pad, prefetch) against the very same batches held in memory as
tensors. The ratio store / memory of training steps per second should be >= 0.9: the
pipeline is then not the bottleneck. Also reports the pipeline alone (batches per second
with no model). Prints a table and writes `bench/results/pipeline.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

import keras
import tensorflow as tf

from bench.publish import publish
from keras_music.config import FeatureRecipe
from keras_music.data.mer4q import load_mer4q
from keras_music.data.sequences import ClipSource, EpochClock, SequenceConfig, feature_statistics, make_dataset
from keras_music.data.splits import split_by_group
from keras_music.data.store import FeatureStore, serialize_clip
from keras_music.models.registry import REGISTRY, families

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "mer4q"
RESULTS = REPO_ROOT / "bench" / "results"
SEQUENCE_MODELS = [f.name for f in families("emotion") if f.inputs == "sequences"]


def write_store(clips, clip_ids, root: Path) -> FeatureStore:
    store = FeatureStore(root)
    store.open_for_writing(FeatureRecipe())
    for start in range(0, len(clip_ids), 64):
        batch = [({"clip_id": c, "source": str(clips.feature_dir / f"{c}.npz"), "frames": 0, "seconds": 0.0},
                  serialize_clip(c, clips.load(c))) for c in clip_ids[start:start + 64]]
        store.write_shard(batch)
    return store


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="4Q-style folder. Default: %(default)s")
    parser.add_argument("--model", choices=SEQUENCE_MODELS, default="cnn_lstm")
    parser.add_argument("--epochs", type=int, default=3, help="Timed epochs per pipeline. Default: 3.")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    parser.add_argument("--out", type=Path, default=RESULTS / "pipeline.json", help="Default: %(default)s")
    args = parser.parse_args(argv)

    tags, clips, groups = load_mer4q(args.data)
    split = split_by_group([groups[c] for c in tags.clip_ids], 0, 0.15, 0.15)
    train_ids = [tags.clip_ids[i] for i in split.train]
    config = SequenceConfig()
    with tempfile.TemporaryDirectory() as tmp:
        source = ClipSource.from_store(write_store(clips, train_ids, Path(tmp) / "store"))
        stats = feature_statistics(source, train_ids)
        streamed = make_dataset(source, tags, train_ids, config, training=True, seed=0, clock=EpochClock())
        batches = list(streamed)  # one epoch, materialised: the same tensors, in memory
        steps = len(batches)
        in_memory = functools.reduce(tf.data.Dataset.concatenate, map(tf.data.Dataset.from_tensors, batches))
        in_memory = in_memory.prefetch(tf.data.AUTOTUNE)

        start = time.perf_counter()
        for _ in range(args.epochs):
            for _ in streamed:
                pass
        pipeline_only = args.epochs * steps / (time.perf_counter() - start)

        results = {}
        for name, dataset in (("store (streamed)", streamed), ("memory (same tensors)", in_memory)):
            keras.utils.set_random_seed(0)
            family = REGISTRY[args.model]
            model = family.build(family.config(), tags.tags, FeatureRecipe().feature_dims, stats)
            model.fit(dataset.take(2), epochs=1, verbose=0)  # trace once
            start = time.perf_counter()
            model.fit(dataset, epochs=args.epochs, verbose=0)
            results[name] = args.epochs * steps / (time.perf_counter() - start)
            print(f"{name}: {results[name]:.1f} training steps/s", file=sys.stderr)

    ratio = results["store (streamed)"] / results["memory (same tensors)"]
    lines = [f"{args.model}, {len(train_ids)} training clips of `{args.data.name}`, batch {config.batch_size}, "
             f"crops of {config.crop_frames} frames, {steps} steps/epoch, {args.epochs} timed epochs; "
             f"{os.cpu_count()} CPUs, {platform.machine()}.", "",
             "| input | training steps/s |", "|---|---|"]
    lines += [f"| {name} | {value:.1f} |" for name, value in results.items()]
    lines += [f"| ratio store / memory | {ratio:.2f} |", f"| pipeline alone (batches/s, no model) | {pipeline_only:.1f} |"]
    publish("pipeline", {"model": args.model, "steps_per_second": results, "ratio": ratio,
                         "pipeline_batches_per_second": pipeline_only, "steps_per_epoch": steps},
            "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
