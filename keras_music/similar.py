"""List the files of a tagged collection that sound most like a query (cosine similarity of embeddings).

    keras-music predict music/ --embeddings --out music.jsonl       # once: every file's embedding
    keras-music similar music/song.mp3 --index music.jsonl -k 10     # a file of the collection
    keras-music similar new_song.flac --index music.jsonl            # any audio file: embedded now
    python -m keras_music.similar song.mp3 --index music.jsonl --format json   # the same command

QUERY is a file of the index (its record's name as written, a path to the same file, or a bare
file name only one record has: its stored embedding is used, and it is left out of the answer)
or an audio file, embedded with the model that wrote the index: the packaged model named in the
records' `model` identity (NAME/VERSION:digest), or the export given with --model. An export
whose digest differs from the index's is refused: vectors of two models cannot be compared.

One query is answered exactly (NumPy; about 12 ms at 1M files on 2 cores): building the
approximate graph (faiss HNSW, `pip install 'keras_music[ann]'`) takes minutes at that size and
pays only over thousands of queries (`python -m bench.similarity`), so `--method approximate` is
there to compare, and the Python index (`keras_music.similarity.SimilarityIndex`, whose "auto"
goes approximate above EXACT_SEARCH_LIMIT files) serves many queries. Scores are cosine
similarities in [-1, 1] (1: the same direction). From Python:
`SimilarityIndex.from_records("music.jsonl").neighbours("song.mp3")`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.similarity import METHODS, SimilarityIndex, check_k
from keras_music.tagging.presets import preset_names

FLAGS = {"k": "-k", "method": "--method", "model": "--model", "records": "--index", "path": "--model",
         "name": "QUERY", "vector": "QUERY"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keras-music similar", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("query", metavar="QUERY", help="A file of the index, or an audio file to embed.")
    parser.add_argument("--index", required=True, metavar="TAGS.jsonl",
                        help="Records with embeddings: `keras-music predict ... --embeddings --out TAGS.jsonl`.")
    parser.add_argument("-k", type=int, default=10, help="How many similar files to list. Default: 10.")
    parser.add_argument("--model", default=None, metavar="EXPORT_OR_PRESET",
                        help="The export (or packaged model name) to embed an audio QUERY with; it must be the one "
                             "that wrote the index (same digest). Default: the packaged model the index names.")
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="exact (NumPy), approximate (faiss HNSW; the `ann` extra) or auto: exact, since one "
                             "query never repays building the approximate graph. Default: auto.")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="table (default), csv or json, on stdout.")
    args = parser.parse_args(argv)
    try:
        check_k(args.k)
    except ParameterError as error:
        parser.error(error.for_flags(FLAGS))
    return args


def digest_of(identity: str | None) -> str:
    """The digest part of `NAME/VERSION:digest` (the whole text if it has none)."""
    return str(identity).rpartition(":")[2]


def embedding_model(index: SimilarityIndex, model: str | None) -> tuple[str | None, str | None]:
    """`(preset, export)` to embed an audio query for `index` with: `model` (an export folder or a
    preset name), else the packaged model the index's identity names. `ValueError` with the message
    to print when neither fits (checked before TensorFlow starts)."""
    if model is None:
        if index.model is None:
            raise ValueError(f"--index {index.source}: its records carry no model identity, so an audio QUERY "
                             "needs --model (the export that wrote them).")
        name = index.model.partition("/")[0]
        if name not in preset_names():
            raise ValueError(f"--index {index.source} was written by the export {index.model}, not a packaged model: "
                             "give that export with --model saved_models/NAME.")
        return name, None
    if model in preset_names() and not Path(model).exists():
        return model, None
    return None, model


def embedding_tagger(index: SimilarityIndex, model: str | None):
    """The Tagger that embeds an audio query for `index` (see `embedding_model`), its identity checked
    against the index's before its graph loads: `ValueError` naming both digests when they differ."""
    from keras_music.tagging.tagger import Tagger

    preset, export = embedding_model(index, model)
    tagger = Tagger.from_preset(preset, load=False) if preset else Tagger.from_export(export, load=False)
    if index.model is None:
        logging.getLogger(__name__).warning("%s carries no model identity: cannot check that %s made its embeddings.",
                                            index.source, tagger.identity)
    elif tagger.identity != index.model:
        raise ValueError(f"--index {index.source} was written by {index.model} (digest {digest_of(index.model)}), but "
                         f"{model or 'the packaged model'} is {tagger.identity} (digest {digest_of(tagger.identity)}): "
                         "embeddings of two models cannot be compared; tag the files again with this model, or pass "
                         "--model with the export that wrote the index.")
    return tagger


def format_answer(pairs: list[tuple[str, float]], fmt: str) -> str:
    """The answer as text: a table (scores to 3 decimals), CSV or JSON, ranks from 1."""
    if fmt == "json":
        return json.dumps([{"rank": rank, "score": round(score, 6), "file": name}
                           for rank, (name, score) in enumerate(pairs, start=1)], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["rank", "score", "file"]] + [
            [rank, f"{score:.6f}", name] for rank, (name, score) in enumerate(pairs, start=1)])
        return buffer.getvalue()
    lines = [f"{'rank':>4}  {'score':>6}  file"]
    lines += [f"{rank:>4}  {score:>6.3f}  {name}" for rank, (name, score) in enumerate(pairs, start=1)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        method = "exact" if args.method == "auto" else args.method  # one query: see the docstring
        index = SimilarityIndex.from_records(args.index, method=method)
        position = index.find(args.query)
    except ParameterError as error:
        print(f"error: {error.for_flags(FLAGS)}", file=sys.stderr)
        return 1
    if position is not None:
        pairs = index.neighbours(index.names[position], args.k)
        what = f"{index.names[position]} (in the index)"
    else:
        query = Path(args.query)
        if query.is_dir() or not query.is_file():
            close = index.close_names(args.query) if not query.is_dir() else []
            hint = f" Close names in the index: {', '.join(close)}." if close else ""
            kind = "a folder, not an audio file" if query.is_dir() else "no such audio file"
            print(f"error: QUERY {args.query!r}: not a file of {args.index} ({len(index)} files), and {kind}.{hint}",
                  file=sys.stderr)
            return 1
        try:
            embedding_model(index, args.model)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        from keras_music.tf_logging import import_tensorflow

        import_tensorflow()  # only now: index, name and model errors answer without TensorFlow
        try:
            tagger = embedding_tagger(index, args.model)
            vector = tagger.embed(query)
            pairs = index.query(vector, args.k)
        except ParameterError as error:
            print(f"error: {error.for_flags(FLAGS)}", file=sys.stderr)
            return 1
        except (FileNotFoundError, ValueError) as error:  # a bad export, an undecodable file, another model
            print(f"error: {error}", file=sys.stderr)
            return 1
        what = f"{args.query} (embedded with {tagger.identity})"
    print(f"Most similar to {what} among {len(index)} files ({index.method} search):", file=sys.stderr)
    sys.stdout.write(format_answer(pairs, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
