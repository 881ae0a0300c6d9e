"""Texts first, embeddings later, then vector search with TQL.

As the usage guide recommends for embeddings: create the dataset with the texts and append
them, then (maybe later, on another machine) add an ``Embedding`` column and fill it, then
search with ``ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC LIMIT k``.

The "model" here is a deterministic hashed bag of words, so the example needs no download;
swap in any sentence-embedding model.

Run with ``python examples/embeddings_search.py [URL]`` (default: a fresh ``tmp://`` dataset).
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

import lakefmt
from lakefmt import types

DIM = 64

SUBJECTS = [
    "the cat",
    "a dog",
    "the pilot",
    "my neighbour",
    "a robot",
    "the chef",
    "a child",
    "the band",
    "an old sailor",
    "the gardener",
]
VERBS = ["paints", "repairs", "sings about", "cooks", "watches", "draws", "builds", "forgets"]
OBJECTS = [
    "a red boat",
    "the mountain",
    "fresh bread",
    "the night sky",
    "a broken clock",
    "green tea",
    "the river",
    "an orange kite",
]


def embed(texts: list[str]) -> np.ndarray:
    """A stand-in embedding model: hashed bag of words, L2-normalised, float32."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            out[row, int.from_bytes(digest[:4], "little") % DIM] += 1.0
            out[row, int.from_bytes(digest[4:], "little") % DIM] += 0.5
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main(url: str = "tmp://") -> None:
    """Build the text dataset, add embeddings, and run a vector search."""
    texts = [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS][::3]

    # Step 1: texts only.
    ds = lakefmt.create(url, schema={"id": types.Int64(), "text": types.Text()})
    ds.append({"id": np.arange(len(texts)), "text": texts})
    ds.commit("texts")
    print(f"appended {len(ds)} texts")

    # Step 2 (later): the embedding column, filled in batches.
    ds.add_column("embedding", types.Embedding(DIM))
    for start in range(0, len(ds), 100):
        stop = min(start + 100, len(ds))
        ds["embedding"][start:stop] = embed(ds["text"][start:stop])
    ds.commit("embeddings")
    vectors = ds["embedding"][:]
    print(f"embedded: column {ds.schema['embedding']!r}, array {vectors.shape} {vectors.dtype}")
    assert vectors.shape == (len(texts), DIM)
    assert np.allclose(vectors, embed(texts), atol=1e-6)

    # Step 3: vector search in TQL.
    question = "the cat paints a red boat"
    q = embed([question])[0]
    literal = ", ".join(f"{x:.7f}" for x in q)
    result = ds.query(
        f"SELECT * ORDER BY COSINE_SIMILARITY(embedding, ARRAY[{literal}]) DESC LIMIT 5"
    )
    found = result["text"][:]
    print(f"top 5 for {question!r}:")
    for rank, text in enumerate(found, 1):
        print(f"  {rank}. {text}")

    # The same ranking, brute force in numpy.
    scores = vectors @ q  # rows are unit vectors
    expected = [texts[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert len(found) == 5
    assert found[0] == question, found
    assert {round(float(s), 5) for s in np.sort(scores)[-5:]} == {
        round(float(scores[texts.index(t)]), 5) for t in found
    }, (found, expected)

    # Filters and similarity together: only texts about a dog.
    dogs = ds.query(
        f"SELECT id, text, COSINE_SIMILARITY(embedding, ARRAY[{literal}]) AS score "
        "WHERE CONTAINS(text, 'dog') ORDER BY score DESC LIMIT 3"
    )
    print("best 3 about a dog:", dogs["text"][:])
    assert len(dogs) == 3 and all("dog" in t for t in dogs["text"][:])
    assert list(dogs["score"][:]) == sorted(dogs["score"][:], reverse=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
