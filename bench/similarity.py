"""Similarity search (`keras-music similar`, `keras_music.similarity`): exact NumPy search against
approximate search (faiss HNSW), where exact stops being fast, and whether the packaged model's
nearest neighbours share the query's 4Q quadrant.

    python -m bench.similarity                                         # synthetic sizes only
    python -m bench.similarity --records ../scratch/mer4q.jsonl --labels ../shared/datasets/mer4q/labels.csv \
        --readme docs/benchmarks.md

Synthetic part: clustered vectors as wide as the packaged model's embeddings (64): sqrt(n) cluster
centres, ReLU'd Gaussians like the head's ReLU layer, each vector its centre plus Gaussian noise
(`SPREAD`), ReLU'd and L2-normalised; 200 more from the same clusters are the queries (not in the
index). Per size: the median time of one query through `SimilarityIndex.query` (k=10), exact and
approximate; the approximate graph's build time; recall@10 (the share of the exact top 10 the
approximate search finds); and every file's top 10 at once (`all_neighbours`, what the HTML report
precomputes; the approximate time includes building its graph) up to `--batch-max` vectors. The
exact search limit is where the median exact query passes `--budget-ms` (10 ms: interactive, and
100 queries a second for a service), from a least-squares line through the measured sizes (the
time is linear in n): it is what `keras_music.similarity.EXACT_SEARCH_LIMIT` should be. The batch
limit (`EXACT_BATCH_LIMIT`) is where every file's exact top 10 passes `--batch-budget-s` (2 s),
from c n^2 fitted to the measured times. At `--compare-size` vectors the installed
approximate-nearest-neighbour libraries are compared with the same kind of graph (HNSW, 16 links).

4Q part (with --records, the packaged model's records of the 765 4Q clips with `--embeddings`, and
--labels, whose clip_id column names the records' files `<clip_id>.mp3`): how often a clip's nearest
neighbour (itself excluded) has the clip's quadrant, against chance (the rate for a random other
clip, from the label counts: sum n_q (n_q - 1) / (n (n - 1))), and the share of the 10 nearest
with it. The packaged model's head was trained on 527 of the clips (its run's config.json keeps
the split), so the rows on all clips are optimistic; the held-out rows search only among the 124
clips its training never saw. With a metadata.csv beside the labels (clip_id, artist) the nearest
neighbour by another artist is also counted (many artists have several clips). Then the top 10 of
one held-out clip, as `keras-music similar` lists them. Writes bench/results/similarity.json (+ .md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.publish import check_block, publish
from keras_music.similarity import (ANN_BUILD_BREADTH, ANN_LINKS, ANN_SEARCH_BREADTH, EXACT_BATCH_LIMIT,
                                    EXACT_SEARCH_LIMIT, SimilarityIndex, ann_library)

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
PACKAGED_RUN = REPO_ROOT / "keras_music" / "pretrained" / "emotion_4q" / "run" / "config.json"
WIDTH = 64  # the packaged model's embedding width
SPREAD = 0.5  # noise around a cluster centre (centres' entries are ReLU'd N(0, 1))
K = 10
# Wheel sizes (Linux x86_64, CPython 3.11), measured with `pip download --no-deps --only-binary=:all:`.
WHEELS = {"faiss": "faiss-cpu 1.15.1: 18.8 MB wheel (numpy, packaging)",
          "usearch": "usearch 2.26.6: 2.3 MB wheel (+ numkong, tqdm)",
          "hnswlib": "hnswlib 0.8.0: no wheel, source only (needs a C++ compiler)"}


def clustered_vectors(n: int, width: int = WIDTH, seed: int = 0, spread: float = SPREAD,
                      clusters: int | None = None) -> np.ndarray:
    """`(n, width)` float32 unit vectors in sqrt(n) clusters (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    clusters = clusters or max(10, int(np.sqrt(n)))
    centres = np.maximum(rng.standard_normal((clusters, width), dtype="float32"), 0)
    vectors = centres[rng.integers(clusters, size=n)]
    vectors += spread * rng.standard_normal((n, width), dtype="float32")
    np.maximum(vectors, 0, out=vectors)
    vectors[~vectors.any(axis=1), 0] = 1.0  # a rare all-zero row: give it a direction
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def recall_at_k(found: list[list], truth: list[list]) -> float:
    """The mean share of each query's true top-k that `found` has (recall@k against exact search)."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def timed_queries(index: SimilarityIndex, queries: np.ndarray, k: int = K) -> tuple[float, list[list[str]]]:
    """Median milliseconds of one `index.query` (after 5 untimed), and each query's names."""
    for query in queries[:5]:
        index.query(query, k)
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        pairs = index.query(query, k)
        times.append(time.perf_counter() - started)
        found.append([name for name, _ in pairs])
    return statistics.median(times) * 1000, found


def exact_limit(sizes: list[int], milliseconds: list[float], budget_ms: float) -> int | None:
    """The size where exact query time, a least-squares line through the measured points, reaches
    `budget_ms`, to two significant digits (rounded down); None when the line does not reach it
    within 5 times the largest size measured (a guess, not a measurement)."""
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(milliseconds, float), 1)
    size = (budget_ms - intercept) / slope if slope > 0 else np.inf
    if size > 5 * max(sizes):
        return None
    if size < 1:
        return 0
    return two_digits(size)


def two_digits(size: float) -> int:
    """`size` to two significant digits, rounded down (a limit: 812,345 -> 810,000)."""
    digits = 10 ** max(0, int(np.floor(np.log10(size))) - 1)
    return int(size // digits * digits)


def exact_batch_limit(sizes: list[int], seconds: list[float], budget_s: float) -> int | None:
    """The size where every file's exact top 10, seconds = c n^2 fitted by least squares through the
    measured points, reaches `budget_s` (two significant digits, rounded down); None when not
    within 5 times the largest size measured."""
    sizes, seconds = np.asarray(sizes, float), np.asarray(seconds, float)
    c = float((seconds * sizes**2).sum() / (sizes**4).sum())
    size = np.sqrt(budget_s / c) if c > 0 else np.inf
    return None if size > 5 * sizes.max() else two_digits(max(size, 1))


def synthetic_row(n: int, queries: int, batch_max: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Exact and approximate search over `n` clustered vectors; the row and the vectors (for reuse)."""
    vectors = clustered_vectors(n + queries, seed=seed)
    base, asked = vectors[:n], vectors[n:]
    names = [str(i) for i in range(n)]
    exact = SimilarityIndex(base, names, method="exact")
    exact_ms, truth = timed_queries(exact, asked)
    row, approximate = {"vectors": n, "exact_ms": exact_ms}, None
    if ann_library() is not None:
        approximate = SimilarityIndex(exact.vectors, names, method="approximate")
        started = time.perf_counter()
        approximate.graph  # noqa: B018 -- built on first use: timed here
        row["build_s"] = time.perf_counter() - started
        row["approximate_ms"], found = timed_queries(approximate, asked)
        row["recall_at_10"] = recall_at_k(found, truth)
        saved_ms = exact_ms - row["approximate_ms"]  # per query; None: exact is as fast, never repaid
        row["queries_to_repay_build"] = row["build_s"] * 1000 / saved_ms if saved_ms > 0 else None
    if n <= batch_max:
        started = time.perf_counter()
        exact.all_neighbours(K)
        row["all_exact_s"] = time.perf_counter() - started
        if approximate is not None:  # a new graph: the time includes its build
            started = time.perf_counter()
            SimilarityIndex(exact.vectors, names, method="approximate").all_neighbours(K)
            row["all_approximate_s"] = time.perf_counter() - started
    return row, vectors


def compare_libraries(vectors: np.ndarray, queries: int) -> list[dict]:
    """Build time, median ms per query and recall@10 of the installed ANN libraries' HNSW graphs (16 links)
    on `vectors` (the last `queries` rows are the queries), each against exact search."""
    base, asked = vectors[:-queries], vectors[-queries:]
    exact = SimilarityIndex(base, [str(i) for i in range(len(base))], method="exact")
    truth = [[int(name) for name, _ in exact.query(q, K)] for q in asked]
    rows = []
    for library, build, search in library_runners():
        started = time.perf_counter()
        graph = build(base)
        build_s = time.perf_counter() - started
        for query in asked[:5]:
            search(graph, query)
        times, found = [], []
        for query in asked:
            started = time.perf_counter()
            found.append(search(graph, query))
            times.append(time.perf_counter() - started)
        rows.append({"library": library, "vectors": len(base), "build_s": build_s,
                     "ms_per_query": statistics.median(times) * 1000, "recall_at_10": recall_at_k(found, truth),
                     "install": WHEELS.get(library.split()[0], "")})
        del graph
    return rows


def library_runners():
    """`(name, build(vectors), search(graph, query) -> positions)` of each installed library, same settings:
    HNSW, 16 links, build breadth `ANN_BUILD_BREADTH` (usearch: expansion_add), search breadth 64."""
    threads = os.cpu_count() or 1
    try:
        import faiss
    except ImportError:
        pass
    else:
        def faiss_build(vectors):
            graph = faiss.IndexHNSWFlat(vectors.shape[1], ANN_LINKS, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = ANN_BUILD_BREADTH
            graph.add(vectors)
            graph.hnsw.efSearch = ANN_SEARCH_BREADTH
            return graph

        yield "faiss (IndexHNSWFlat)", faiss_build, lambda graph, q: graph.search(q[None], K)[1][0].tolist()
    try:
        import hnswlib
    except ImportError:
        pass
    else:
        def hnswlib_build(vectors):
            graph = hnswlib.Index(space="ip", dim=vectors.shape[1])
            graph.init_index(max_elements=len(vectors), ef_construction=ANN_BUILD_BREADTH, M=ANN_LINKS)
            graph.set_num_threads(threads)
            graph.add_items(vectors)
            graph.set_ef(ANN_SEARCH_BREADTH)
            graph.set_num_threads(1)
            return graph

        yield "hnswlib", hnswlib_build, lambda graph, q: graph.knn_query(q, k=K)[0][0].tolist()
    try:
        from usearch.index import Index
    except ImportError:
        pass
    else:
        def usearch_build(vectors):
            graph = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=ANN_LINKS,
                          expansion_add=ANN_BUILD_BREADTH, expansion_search=ANN_SEARCH_BREADTH)
            graph.add(np.arange(len(vectors)), vectors, threads=threads)
            return graph

        yield "usearch", usearch_build, lambda graph, q: graph.search(q, K, threads=1).keys.tolist()


def read_column(path: Path, column: str) -> dict[str, str]:
    """`{clip_id: value}` of a CSV with a clip_id column; ValueError naming the file when a column is missing."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "clip_id" not in rows[0] or column not in rows[0]:
        raise ValueError(f"{path}: expected the columns clip_id and {column} (found {list(rows[0]) if rows else []}).")
    return {row["clip_id"]: row[column] for row in rows}


def chance_same_label(labels: list[str]) -> float:
    """The probability that a random other item has an item's label: sum n_l (n_l - 1) / (n (n - 1))."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1].astype(float)
    n = counts.sum()
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def chance_same_label_other_group(labels: list[str], groups: list[str]) -> float:
    """The mean over items of the share of items of another group (artist) that have the item's label."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    shares = []
    for label, group in zip(labels, groups):
        others = groups != group
        shares.append(float((labels[others] == label).mean()) if others.any() else np.nan)
    return float(np.nanmean(shares))


def neighbour_agreement(positions: np.ndarray, labels: list[str]) -> dict:
    """How often the first neighbour (`positions[:, 0]`) has the query's label (with its standard error),
    and the mean share of all listed neighbours that do."""
    labels = np.asarray(labels)
    same = labels[positions] == labels[:, None]
    rate = float(same[:, 0].mean())
    standard_error = float(np.sqrt(rate * (1 - rate) / len(labels)))
    return {"clips": len(labels), "nearest_same": rate, "standard_error": standard_error,
            "top_k_same": float(same.mean()), "chance": chance_same_label(list(labels))}


def nearest_other_group(index: SimilarityIndex, groups: list[str]) -> np.ndarray:
    """Each item's nearest neighbour of another group (artist), `(n, 1)` positions (exact search)."""
    groups = np.asarray(groups)
    scores = index.vectors @ index.vectors.T
    scores[groups[:, None] == groups[None, :]] = -np.inf  # itself and its group's other items
    return np.argmax(scores, axis=1)[:, None]


def quadrant_rows(records: Path, labels_path: Path, run_config: Path = PACKAGED_RUN,
                  example: str | None = None) -> dict:
    """The 4Q part: agreement rows and one held-out clip's top 10 (see the module's docstring)."""
    index = SimilarityIndex.from_records(records, method="exact")
    quadrants = read_column(labels_path, "quadrant")
    clips = [Path(name).stem for name in index.names]
    known = [i for i, clip in enumerate(clips) if clip in quadrants]
    if not known:
        raise ValueError(f"{records}: no file is named <clip_id>.mp3 for a clip_id of {labels_path}.")
    held_out = set(json.loads(run_config.read_text())["splits"]["test"]) if run_config.is_file() else set()
    metadata = labels_path.with_name("metadata.csv")
    artists = read_column(metadata, "artist") if metadata.is_file() else {}
    rows = []
    for name, members in (("all clips", known), ("held-out clips", [i for i in known if clips[i] in held_out])):
        if len(members) < 2:
            continue
        subset = SimilarityIndex(index.vectors[members], [index.names[i] for i in members], index.model, "exact")
        labels = [quadrants[clips[i]] for i in members]
        positions, _ = subset.all_neighbours(K)
        rows.append({"searched": name, "neighbour": "any", **neighbour_agreement(positions, labels)})
        groups = [artists.get(clips[i], clips[i]) for i in members]
        if artists and len(set(groups)) > 1:
            agreement = neighbour_agreement(nearest_other_group(subset, groups), labels)
            agreement.update(chance=chance_same_label_other_group(labels, groups), top_k_same=None)
            rows.append({"searched": name, "neighbour": "another artist's", **agreement})
    chosen = example or next((clips[i] for i in known if clips[i] in held_out), clips[known[0]])
    position = index.position(next(name for name, clip in zip(index.names, clips) if clip == chosen))
    top = [{"rank": rank, "score": score, "file": Path(name).name, "quadrant": quadrants.get(Path(name).stem, "?")}
           for rank, (name, score) in enumerate(index.neighbours(index.names[position], K), start=1)]
    return {"rows": rows, "model": index.model, "records": len(index), "labelled": len(known),
            "held_out_known": bool(held_out), "example": {"clip": chosen, "quadrant": quadrants.get(chosen, "?"),
                                                          "held_out": chosen in held_out, "top": top},
            "cosines": cosine_summary(index.vectors)}


def cosine_summary(vectors: np.ndarray) -> dict:
    """Mean cosine between two different vectors and the median nearest-neighbour cosine (how clustered)."""
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, np.nan)
    return {"mean": float(np.nanmean(scores)), "median_nearest": float(np.median(np.nanmax(scores, axis=1)))}


def markdown_of(payload: dict) -> str:
    """The tables: synthetic sizes, the libraries, the 4Q rows and the example's top 10."""
    meta = payload["meta"]
    header = ("| vectors | exact ms/query | approximate ms/query | graph build s | recall@10 | queries to repay the "
              "build | all files' top 10, exact s | approximate s (build included) |")
    lines = [meta["text"], "", header, "|---|---|---|---|---|---|---|---|"]

    def cell(row, key, fmt, missing="-"):
        if key not in row:
            return "-"
        return missing if row[key] is None else format(row[key], fmt)

    for row in payload["synthetic"]:
        lines.append(f"| {row['vectors']:,} | {row['exact_ms']:.2f} | {cell(row, 'approximate_ms', '.3f')} | "
                     f"{cell(row, 'build_s', '.1f')} | {cell(row, 'recall_at_10', '.3f')} | "
                     f"{cell(row, 'queries_to_repay_build', ',.0f', 'never')} | {cell(row, 'all_exact_s', '.2f')} | "
                     f"{cell(row, 'all_approximate_s', '.2f')} |")
    def limit_text(limit):
        return "not reached by 5x the largest size" if limit is None else f"{limit:,} vectors"

    limits = (f"Exact search limit, one query (the median exact query reaches {meta['budget_ms']:g} ms, "
              f"least-squares line through the sizes): {limit_text(payload['exact_limit'])}; "
              f"`keras_music.similarity.EXACT_SEARCH_LIMIT` is {EXACT_SEARCH_LIMIT:,}. Every file's top 10 (exact "
              f"time reaches {meta['batch_budget_s']:g} s, c n^2 fitted): {limit_text(payload['exact_batch_limit'])}; "
              f"`EXACT_BATCH_LIMIT` is {EXACT_BATCH_LIMIT:,}.")
    lines += ["", limits]
    if payload["libraries"]:
        lines += ["", f"Approximate libraries, HNSW with {ANN_LINKS} links, build breadth {ANN_BUILD_BREADTH}, search "
                  f"breadth {ANN_SEARCH_BREADTH}, on {payload['libraries'][0]['vectors']:,} of the vectors above:", "",
                  "| library | graph build s | ms/query | recall@10 | install |", "|---|---|---|---|---|"]
        lines += [f"| {r['library']} | {r['build_s']:.1f} | {r['ms_per_query']:.3f} | {r['recall_at_10']:.3f} | "
                  f"{r['install']} |" for r in payload["libraries"]]
    quadrant = payload.get("quadrants")
    if quadrant:
        lines += ["", f"Nearest neighbours on the 4Q clips ({quadrant['labelled']} labelled records of "
                  f"{quadrant['model']}; cosine between two clips: mean {quadrant['cosines']['mean']:.2f}, median "
                  f"nearest {quadrant['cosines']['median_nearest']:.2f}; the synthetic vectors at the same size: "
                  f"{meta['synthetic_cosines']['mean']:.2f} and {meta['synthetic_cosines']['median_nearest']:.2f}):",
                  "", "| searched among | neighbour | clips | nearest shares the quadrant | chance | "
                  "share of the 10 nearest |", "|---|---|---|---|---|---|"]
        for row in quadrant["rows"]:
            top = "-" if row["top_k_same"] is None else f"{row['top_k_same']:.3f}"
            lines.append(f"| {row['searched']} | {row['neighbour']} | {row['clips']} | {row['nearest_same']:.3f} ± "
                         f"{row['standard_error']:.3f} | {row['chance']:.3f} | {top} |")
        if not quadrant["held_out_known"]:
            lines.append("\nThe packaged model's split was not found: its head was trained on most of these clips, so "
                         "the figures are optimistic.")
        example = quadrant["example"]
        lines += ["", f"`keras-music similar {example['clip']}.mp3 --index RECORDS -k 10` ({example['quadrant']}"
                  f"{', held out' if example['held_out'] else ''}), searched among all clips:", "",
                  "| rank | score | file | quadrant |", "|---|---|---|---|"]
        lines += [f"| {t['rank']} | {t['score']:.3f} | {t['file']} | {t['quadrant']} |" for t in example["top"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000],
                        help="Synthetic index sizes. Default: %(default)s.")
    parser.add_argument("--queries", type=int, default=200, help="Queries per size (median time). Default: 200.")
    parser.add_argument("--budget-ms", type=float, default=10.0,
                        help="Exact search is fast while one query takes at most this. Default: 10.")
    parser.add_argument("--batch-budget-s", type=float, default=2.0,
                        help="Every file's exact top 10 is fast while it takes at most this. Default: 2.")
    parser.add_argument("--batch-max", type=int, default=100_000,
                        help="Largest size whose all-files top 10 is timed. Default: 100000.")
    parser.add_argument("--compare-size", type=int, default=100_000,
                        help="Vectors for the library comparison (0: skip). Default: 100000.")
    parser.add_argument("--records", type=Path, default=None,
                        help="The packaged model's records of the 4Q clips (`predict --embeddings --out X.jsonl`).")
    parser.add_argument("--labels", type=Path, default=None, help="4Q labels.csv (clip_id, quadrant).")
    parser.add_argument("--example", default=None, help="The clip_id whose top 10 is listed (default: the first "
                        "held-out clip).")
    parser.add_argument("--out", type=Path, default=RESULTS / "similarity.json", help="Default: %(default)s")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    if (args.records is None) != (args.labels is None):
        parser.error("--records and --labels go together.")
    for given in (args.records, args.labels):
        if given is not None and not given.is_file():
            parser.error(f"{given}: no such file.")
    if min(args.sizes) < 2 or args.queries < 5:
        parser.error("--sizes need at least 2 vectors and --queries at least 5.")
    if args.readme:
        check_block(args.readme, "similarity")  # fail now, not after the run
    load = os.getloadavg()[0]
    quadrants = quadrant_rows(args.records, args.labels, example=args.example) if args.records else None
    synthetic, libraries = [], []
    for n in sorted(args.sizes):
        row, vectors = synthetic_row(n, args.queries, args.batch_max)
        synthetic.append(row)
        print(json.dumps(row), file=sys.stderr)
        if n == args.compare_size:
            libraries = compare_libraries(vectors, args.queries)
        del vectors
    if args.compare_size and not libraries:
        libraries = compare_libraries(clustered_vectors(args.compare_size + args.queries), args.queries)
    faiss = ann_library()
    threads = faiss.omp_get_max_threads() if faiss else None
    text = (f"Measured by `python -m bench.similarity` on {platform.machine()} ({os.cpu_count()} CPUs, load average "
            f"{load:.1f} at the start), NumPy {np.__version__}, faiss {faiss.__version__ if faiss else 'not installed'}"
            f" ({threads} threads to build); {WIDTH}-wide clustered synthetic vectors, {args.queries} queries not in "
            f"the index, k = {K}; ms/query: the median of one `SimilarityIndex.query`; approximate: faiss HNSW "
            f"({ANN_LINKS} links, build breadth {ANN_BUILD_BREADTH}, search breadth {ANN_SEARCH_BREADTH}); queries to "
            "repay the build: graph build time / (exact - approximate time per query).")
    meta = {"text": text, "budget_ms": args.budget_ms, "batch_budget_s": args.batch_budget_s, "load_average": load,
            "queries": args.queries,
            "synthetic_cosines": cosine_summary(clustered_vectors(quadrants["records"] if quadrants else 765))}
    limit = exact_limit([r["vectors"] for r in synthetic], [r["exact_ms"] for r in synthetic], args.budget_ms) \
        if len(synthetic) > 1 else None
    batch = [r for r in synthetic if "all_exact_s" in r]
    batch_limit = exact_batch_limit([r["vectors"] for r in batch], [r["all_exact_s"] for r in batch],
                                    args.batch_budget_s) if batch else None
    payload = {"meta": meta, "synthetic": synthetic, "exact_limit": limit, "exact_batch_limit": batch_limit,
               "libraries": libraries, "quadrants": quadrants}
    publish("similarity", payload, markdown_of(payload), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
