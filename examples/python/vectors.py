"""Actors of the numpy pipeline example (examples/vectors.rs): every .py file of the
standard library becomes an identifier-hash vector, projected to a small embedding with
numpy, and the embeddings are reduced to a centroid and the files nearest to it.

The first stage is pure Python (interpreter actors); the others import numpy, which
refuses own-GIL interpreters, so they run in process actors. Between stages the data
travels as arena buffers: the same pages in every process, never copied.
"""

import io
import os
import sysconfig
import tokenize
import zlib

import subactor

#: Identifier hashes fall into this many buckets.
BUCKETS = 4096
#: The size of an embedding.
DIMENSIONS = 256


def stdlib_files() -> list[str]:
    """Every .py file of this interpreter's standard library (site-packages excluded)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return paths


class Lister:
    def receive(self, _msg: object) -> list[str]:
        return stdlib_files()


class Tokenizer:
    """Stage 1 (pure Python): a path in; (path, a buffer of uint32 identifier hashes) out."""

    def receive(self, path: str) -> tuple[str, object]:
        with open(path, "rb") as f:
            source = f.read()
        hashes = [
            zlib.crc32(token.string.encode()) % BUCKETS
            for token in tokenize.tokenize(io.BytesIO(source).readline)
            if token.type == tokenize.NAME
        ]
        draft = subactor.alloc(4 * len(hashes))
        memoryview(draft).cast("I")[:] = __import__("array").array("I", hashes)
        return (path, draft.freeze())


class Embedder:
    """Stage 2 (numpy, in a process): the hashes in; (path, a float32 embedding) out, the
    embedding a buffer made in this process (lent to the next stage without a copy)."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        # The same projection in every worker (seeded).
        self.projection = np.random.default_rng(7).standard_normal((BUCKETS, DIMENSIONS)).astype(np.float32)

    def receive(self, msg: tuple[str, object]) -> tuple[str, object]:
        np = self.np
        path, frame = msg
        hashes = np.frombuffer(frame, dtype=np.uint32)
        counts = np.bincount(hashes, minlength=BUCKETS).astype(np.float32)
        weights = np.log1p(counts)
        vector = weights @ self.projection
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        draft = subactor.alloc(vector.nbytes)
        np.frombuffer(draft, dtype=np.float32)[:] = vector
        return (path, draft.freeze())


class Reducer:
    """Stage 3 (numpy, in a process): keeps every embedding; answers "result" with the
    number of files and the five nearest to the centroid."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.paths: list[str] = []
        self.vectors: list[object] = []

    def receive(self, msg: object) -> object:
        np = self.np
        if msg == "result":
            if not self.vectors:
                return (0, [])
            matrix = np.stack(self.vectors)
            centroid = matrix.mean(axis=0)
            scores = matrix @ centroid
            best = np.argsort(-scores)[:5]
            root = sysconfig.get_paths()["stdlib"]
            return (len(self.paths), [(os.path.relpath(self.paths[i], root), float(scores[i])) for i in best])
        path, frame = msg
        self.paths.append(path)
        self.vectors.append(np.frombuffer(frame, dtype=np.float32).copy())
        return None
