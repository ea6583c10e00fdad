"""Which tracks sound alike: cosine similarity over the files' embeddings (`SimilarityIndex`).

`keras-music predict --embeddings --out tags.jsonl` gives every file a vector (the packaged
model: 64 values, the head's hidden layer); files whose vectors point the same way sound
alike to the model. The vectors are L2-normalised once, so a cosine is a dot product.

Search is exact, NumPy matrix products, up to `EXACT_SEARCH_LIMIT` files for one query (a
matrix-vector product) and up to `EXACT_BATCH_LIMIT` for every file's neighbours at once
(`all_neighbours`, what the HTML report lists: blocks of rows, so memory stays bounded; its
cost grows as files^2). Above them, "auto" uses an approximate nearest-neighbour graph
(faiss's HNSW, `pip install 'keras_music[ann]'`): about 0.4 ms a query at 1M vectors with
recall@10 0.98 against exact search, but the graph takes minutes to build at that size, so it
pays where thousands of queries follow (`python -m bench.similarity`).
"""

from __future__ import annotations

import collections
import difflib
import functools
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from keras_music.errors import ParameterError

logger = logging.getLogger(__name__)

METHODS = ("auto", "exact", "approximate")
# Exact search up to this many vectors, approximate above it (method "auto"). The rule: one exact
# query (NumPy, 64-wide float32 vectors, 2 CPU cores) must stay within 10 ms. Measured by
# `python -m bench.similarity` (bench/results/similarity.md): the median exact query takes
# 0.83 ms at 100k vectors and 12.3 ms at 1M, linear in n; the fitted line reaches 10 ms at 810k.
EXACT_SEARCH_LIMIT = 800_000
# The same for every file's neighbours at once (`all_neighbours`), whose exact cost grows as n^2:
# exact while it takes at most 2 s. Measured by the same bench: 0.59 s at 10k files, 49 s at 100k
# (the graph: 4.4 s to build + 2.8 s to search), so the crossover is 20k.
EXACT_BATCH_LIMIT = 20_000
ANN_EXTRA = "pip install 'keras_music[ann]'"
# faiss IndexHNSWFlat settings: links per node (M), build breadth (efConstruction), search breadth
# (efSearch, at least k). At 1M clustered 64-wide vectors they gave recall@10 0.99 against exact
# search at about 0.2 ms a query, the graph built in about 2 minutes on 2 cores (bench.similarity);
# a build breadth of 40 (faiss's default) built twice as fast but reached only 0.88.
ANN_LINKS = 16
ANN_BUILD_BREADTH = 100
ANN_SEARCH_BREADTH = 64
BLOCK_SCORES = 1 << 23  # scores per block of `all_neighbours` (32 MB of float32)


def check_k(k) -> int:
    """`k` as an int, or `ParameterError` unless it is a whole number of at least 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError("k", k, "expected a whole number of at least 1 (how many similar files to list).")
    return int(k)


def undirected(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows `(n, width)` that are all zeros and of those holding NaN or infinities: rows
    without a direction, so without a cosine."""
    with np.errstate(invalid="ignore"):
        peaks = np.abs(vectors).max(axis=1)  # NaN anywhere in a row makes its peak NaN
    return peaks == 0, ~np.isfinite(peaks)


def normalised(vectors, names: Sequence[str], parameter: str = "vectors") -> np.ndarray:
    """`vectors` `(n, width)` scaled to length 1 as float32; `ParameterError` naming the row's name
    for a row that is all zeros or holds NaN or infinities (its direction, hence its cosine, is undefined)."""
    try:
        array = np.asarray(vectors)
        array = array if array.dtype.kind == "f" else array.astype("float64")
    except (TypeError, ValueError):
        raise ParameterError(parameter, type(vectors).__name__, "expected numbers (files, width).") from None
    if array.ndim != 2 or not array.shape[1]:
        raise ParameterError(parameter, f"array of shape {array.shape}", "expected (files, width) with width > 0.")
    zero, not_finite = undirected(array)
    bad = np.flatnonzero(zero | not_finite)
    if len(bad):
        row = int(bad[0])
        what = "is all zeros" if zero[row] else "holds NaN or infinite values"
        more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise ParameterError(parameter, names[row] if row < len(names) else f"row {row}",
                             f"{what}{more}: cosine similarity needs a vector with a direction.")
    peaks = np.abs(array).max(axis=1, keepdims=True)  # scaled to at most 1 first: no overflow in the norm
    units = (array / peaks).astype("float32", copy=False)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    return np.ascontiguousarray(units)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the `k` highest `scores` per row `(rows, n)`, best first (ties: lower position first)."""
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        candidates = np.argpartition(scores, n - k, axis=1)[:, n - k:]  # no negated copy of a large block
    else:
        candidates = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(values, order, axis=1)


def ann_library():
    """The faiss module, or None when the `ann` extra is not installed."""
    loader = logging.getLogger("faiss")  # its loader logs which CPU build it tried, at INFO: not for users
    if loader.level == logging.NOTSET:
        loader.setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class SimilarityIndex:
    """Files by how alike they sound: cosine similarity over their embeddings.

    Args:
        vectors: `(files, width)` embeddings (any float dtype); each row is L2-normalised. A row
            that is all zeros or holds NaN is an error (it has no direction).
        names: one name per row (the records' file paths), unique.
        model: `NAME/VERSION:digest` of the export that made the vectors (`Tagger.identity`),
            so a query embedded later can be checked to come from the same model; None if unknown.
        method: "exact" (NumPy), "approximate" (faiss HNSW: `pip install 'keras_music[ann]'`)
            or "auto": exact up to `exact_limit` files (`all_neighbours`: `exact_batch_limit`),
            approximate above it (exact, with a warning, when faiss is missing). Defaults to "auto".
        exact_limit: the largest index "auto" queries exactly. Defaults to `EXACT_SEARCH_LIMIT`.
        exact_batch_limit: the largest index whose `all_neighbours` "auto" finds exactly.
            Defaults to `EXACT_BATCH_LIMIT`.

    Example:

    >>> index = SimilarityIndex([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0]], ["a.mp3", "b.mp3", "c.mp3"])
    >>> [(name, round(score, 3)) for name, score in index.neighbours("a.mp3", k=2)]
    [('b.mp3', 0.976), ('c.mp3', 0.0)]
    >>> [(name, round(score, 3)) for name, score in index.query([0.1, 1.0], k=1)]
    [('c.mp3', 0.995)]
    >>> positions, scores = index.all_neighbours(k=1)
    >>> [index.names[p] for p in positions[:, 0]]
    ['b.mp3', 'a.mp3', 'b.mp3']
    """

    def __init__(self, vectors, names: Iterable[str], model: str | None = None, method: str = "auto",
                 exact_limit: int = EXACT_SEARCH_LIMIT, exact_batch_limit: int = EXACT_BATCH_LIMIT):
        names = [str(name) for name in names]
        if method not in METHODS:
            raise ParameterError("method", method, f"expected one of {', '.join(METHODS)}.")
        if not names and not len(vectors):
            raise ParameterError("vectors", "0 rows", "an empty index: tag some files with embeddings first.")
        self.vectors = normalised(vectors, names)
        if len(names) != len(self.vectors):
            raise ParameterError("names", f"{len(names)} names", f"expected one per row of vectors "
                                 f"({len(self.vectors)}).")
        self.positions = {name: i for i, name in enumerate(names)}
        if len(self.positions) != len(names):
            twice = sorted(name for name, count in collections.Counter(names).items() if count > 1)
            raise ParameterError("names", ", ".join(twice[:3]), f"{len(twice)} name(s) given more than once; each "
                                 "row needs a name of its own.")
        self.names = names
        self.model = model
        self.left_out: dict[str, str] = {}  # name -> why it is not searchable (from_records)
        self.source: str | None = None  # the records file (from_records)
        self.method = self.resolve_method(method, exact_limit)  # of `query` and `neighbours`
        self.batch_method = self.resolve_method(method, exact_batch_limit)  # of `all_neighbours`
        limit = min(exact_limit, exact_batch_limit)
        if method == "auto" and len(self) > limit and ann_library() is None:
            logger.warning("%d files is above the exact search limit (%d) but faiss is not installed, so the "
                           "search is exact (slower); %s for approximate search.", len(self), limit, ANN_EXTRA)

    def resolve_method(self, method: str, exact_limit: int) -> str:
        """"exact" or "approximate" for this index's size; the extra is checked now, not at the first query."""
        if method == "exact" or (method == "auto" and len(self) <= exact_limit):
            return "exact"
        if ann_library() is not None:
            return "approximate"
        if method == "approximate":
            raise ParameterError("method", method, f"needs faiss, which is not installed: {ANN_EXTRA} (or use "
                                 "method exact).")
        return "exact"

    @classmethod
    def from_records(cls, path: str | Path, method: str = "auto", exact_limit: int = EXACT_SEARCH_LIMIT,
                     exact_batch_limit: int = EXACT_BATCH_LIMIT) -> SimilarityIndex:
        """The index of a records file (`predict --embeddings --out X.jsonl`), with its `model` identity.

        Files whose embedding is all zeros or not finite cannot be compared; they are left out
        with a warning and listed in `left_out`. A `RecordsError` (a `ParameterError`) names the
        file when it is not records or they have no embeddings.
        """
        from keras_music.tagging.records import RecordsError, read_collection

        collection = read_collection(path)
        vectors = collection.embeddings()
        names = collection.files
        zero, not_finite = undirected(vectors)
        bad = zero | not_finite
        left_out = {names[i]: "its embedding is all zeros (a silent file?)" if zero[i] else
                    "its embedding holds NaN or infinite values" for i in np.flatnonzero(bad)}
        if left_out:
            first = next(iter(left_out))
            logger.warning("%s: %d file(s) left out of the similarity index, for example %s: %s.", path,
                           len(left_out), first, left_out[first])
        if bad.all():
            raise RecordsError(path, None, "no file has an embedding with a direction (all zeros or NaN).")
        index = cls(vectors[~bad], [n for n, b in zip(names, bad) if not b], collection.model, method, exact_limit,
                    exact_batch_limit)
        index.left_out, index.source = left_out, str(path)
        return index

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"SimilarityIndex({len(self)} files, width {self.width}, {self.method}, model={self.model!r})"

    @property
    def width(self) -> int:
        """How many values each vector has."""
        return self.vectors.shape[1]

    def find(self, name: str | Path) -> int | None:
        """The row of `name`: a record's name as written, a path to the same file (symbolic links
        followed), or, for a bare file name (`song.mp3`) or a path to no file on disk, the one
        record with that file name; None when none matches. `ParameterError` when the file name
        matches several records (give more of the path). A path to another file on disk is not a
        record of the index even if its file name is (it is a new query to embed)."""
        name = str(name)
        if name in self.positions:
            return self.positions[name]
        position = self.absolute_paths.get(os.path.abspath(name))
        on_disk = os.path.exists(name)
        if position is None and on_disk:
            position = self.real_paths.get(os.path.realpath(name))
        if position is not None:
            return position
        if on_disk and os.path.basename(name) != name:
            return None
        matches = self.base_names.get(os.path.basename(name), [])
        if len(matches) > 1:
            shown = ", ".join(self.names[i] for i in matches[:3]) + (", ..." if len(matches) > 3 else "")
            raise ParameterError("name", name, f"{len(matches)} files of the index have this name ({shown}); give "
                                 "more of its path.")
        return matches[0] if matches else None

    @functools.cached_property
    def absolute_paths(self) -> dict[str, int]:
        return {os.path.abspath(name): i for i, name in enumerate(self.names)}

    @functools.cached_property
    def real_paths(self) -> dict[str, int]:  # a system call per name: built only for a query on disk
        return {os.path.realpath(name): i for i, name in enumerate(self.names)}

    @functools.cached_property
    def base_names(self) -> dict[str, list[int]]:
        names: dict[str, list[int]] = {}
        for i, name in enumerate(self.names):
            names.setdefault(os.path.basename(name), []).append(i)
        return names

    def close_names(self, name: str, count: int = 3) -> list[str]:
        """Up to `count` names of the index that look like `name` (for an error's suggestion)."""
        wanted = os.path.basename(str(name))
        bases = list(self.base_names)
        if len(bases) > 20_000:  # difflib is slow on a large catalogue: only names sharing the first letters
            bases = [b for b in bases if b[:3].lower() == wanted[:3].lower()][:20_000]
        return [self.names[self.base_names[b][0]] for b in difflib.get_close_matches(wanted, bases, n=count)]

    def position(self, name: str | Path) -> int:
        """The row of `name` (see `find`), or a `ParameterError` suggesting close names."""
        position = self.find(name)
        if position is not None:
            return position
        if str(name) in self.left_out:
            raise ParameterError("name", name, f"left out of the index: {self.left_out[str(name)]}.")
        close = self.close_names(name)
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise ParameterError("name", name, f"not a file of the index ({len(self)} files).{hint}")

    def query_vector(self, vector) -> np.ndarray:
        """`vector` checked (width, finite, not zero) and normalised."""
        try:
            vector = np.asarray(vector, dtype="float64")
        except (TypeError, ValueError):
            raise ParameterError("vector", type(vector).__name__, f"expected {self.width} numbers.") from None
        if vector.ndim != 1 or len(vector) != self.width:
            raise ParameterError("vector", f"array of shape {vector.shape}", f"expected ({self.width},): the "
                                 "index's embedding width (embed the query with the model that made the index).")
        return normalised(vector[None], ["the query"], parameter="vector")[0]

    def query(self, vector, k: int = 10, exclude: str | Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The `k` files most like `vector` (an embedding of the index's width), best first, as
        `(name, cosine similarity)`; `exclude`: names (or one name) left out of the answer."""
        k = check_k(k)
        excluded = [exclude] if isinstance(exclude, (str, Path)) else list(exclude or [])
        skip = {self.position(name) for name in excluded}
        return self.search(self.query_vector(vector), k, skip)

    def neighbours(self, name: str | Path, k: int = 10) -> list[tuple[str, float]]:
        """The `k` files most like the file `name` of the index (itself left out), best first."""
        k = check_k(k)
        position = self.position(name)
        return self.search(self.vectors[position], k, {position})

    def search(self, unit: np.ndarray, k: int, skip: set[int]) -> list[tuple[str, float]]:
        """`(name, score)` of the `k` best rows for a normalised vector, rows in `skip` left out."""
        if self.method == "approximate":
            positions, scores = self.graph_search(unit[None], k + len(skip))
            pairs = [(p, s) for p, s in zip(positions[0].tolist(), scores[0].tolist()) if p >= 0 and p not in skip]
        elif len(self) > len(skip):
            scores = self.vectors @ unit
            if skip:
                scores[list(skip)] = -np.inf
            positions, values = top_k(scores[None], min(k, len(self) - len(skip)))
            pairs = list(zip(positions[0].tolist(), values[0].tolist()))
        else:
            pairs = []
        return [(self.names[p], float(s)) for p, s in pairs[:k]]

    def all_neighbours(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Every file's `k` most similar other files at once: `(positions, scores)`, both `(files, k)`
        (k at most files - 1), best first; `names[positions[i, j]]` is file i's j-th neighbour.

        Exact search goes in blocks of rows (one matrix product each): 10k files take about 0.6 s
        on 2 cores, and the time grows as files^2 (`batch_method`: approximate above
        `EXACT_BATCH_LIMIT` files). Approximate search may find fewer than k for a file: position
        -1, score NaN.
        """
        k = min(check_k(k), len(self) - 1)
        if k < 1:
            return np.zeros((len(self), 0), "int64"), np.zeros((len(self), 0), "float32")
        if self.batch_method == "approximate":
            found, values = self.graph_search(self.vectors, k + 1)
            is_self = found == np.arange(len(self))[:, None]
            is_self[~is_self.any(axis=1), -1] = True  # itself not found: drop the last instead
            keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
            positions, scores = np.take_along_axis(found, keep, axis=1), np.take_along_axis(values, keep, axis=1)
            scores = np.where(positions >= 0, scores, np.nan).astype("float32")
            return positions.astype("int64"), scores
        rows = max(1, BLOCK_SCORES // len(self))
        positions = np.empty((len(self), k), "int64")
        scores = np.empty((len(self), k), "float32")
        for start in range(0, len(self), rows):
            block = self.vectors[start:start + rows] @ self.vectors.T
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not itself
            positions[start:start + rows], scores[start:start + rows] = top_k(block, k)
        return positions, scores

    @functools.cached_property
    def graph(self):
        """faiss's HNSW graph over the vectors (inner product = cosine here), built on first use."""
        faiss = ann_library()
        graph = faiss.IndexHNSWFlat(self.width, ANN_LINKS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = ANN_BUILD_BREADTH
        logger.info("Building the approximate search graph of %d files (faiss HNSW)...", len(self))
        graph.add(self.vectors)
        return graph

    def graph_search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate `(positions, scores)` `(rows, k)` of normalised `units` (position -1: none found)."""
        self.graph.hnsw.efSearch = max(ANN_SEARCH_BREADTH, k)
        scores, positions = self.graph.search(np.ascontiguousarray(units, dtype="float32"), min(k, len(self)))
        return positions, scores
