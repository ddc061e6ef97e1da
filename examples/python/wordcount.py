"""Actors of the word-count pipeline example (examples/wordcount.rs): identifier
frequencies over every .py file of the Python standard library."""

import collections
import io
import os
import sysconfig
import tokenize


def stdlib_files() -> list[str]:
    """Every .py file of this interpreter's standard library (site-packages excluded)."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return paths


def identifiers(source: bytes) -> dict[str, int]:
    """How often each identifier (NAME token, keywords included) occurs in a file,
    tokenized in pure Python."""
    counts: collections.Counter[str] = collections.Counter()
    for token in tokenize.tokenize(io.BytesIO(source).readline):
        if token.type == tokenize.NAME:
            counts[token.string] += 1
    return dict(counts)


class Lister:
    """Answers the list of standard-library files."""

    def receive(self, _msg: object) -> list[str]:
        return stdlib_files()


class Reader:
    """Stage 1: a path in, the file's bytes out ("where" answers as the Tokenizer's)."""

    def __init__(self) -> None:
        self.handled = 0

    def receive(self, path: str) -> object:
        if path == "where":
            return (os.getpid(), self.handled)
        self.handled += 1
        with open(path, "rb") as f:
            return f.read()


class Tokenizer:
    """Stage 2: a file's bytes in, its identifier counts out (raises on files that do not
    tokenize: the pipeline reports those and goes on). "where" answers (process id,
    files tokenized here), for the cluster example's report."""

    def __init__(self) -> None:
        self.handled = 0

    def receive(self, source: bytes | str) -> object:
        if source == "where":
            return (os.getpid(), self.handled)
        assert isinstance(source, bytes)
        self.handled += 1
        return identifiers(source)


class Totals:
    """Stage 3: merges counts; answers "result" with (total, distinct, top 10)."""

    def __init__(self) -> None:
        self.totals: collections.Counter[str] = collections.Counter()

    def receive(self, msg: object) -> object:
        if msg == "result":
            top = self.totals.most_common(10)
            return (sum(self.totals.values()), len(self.totals), top)
        self.totals.update(msg)
        return None


class PlainCount:
    """The reference: the same count, single-threaded, in one call."""

    def receive(self, paths: list[str]) -> tuple[int, int, list[tuple[str, int]], int]:
        totals: collections.Counter[str] = collections.Counter()
        failed = 0
        for path in paths:
            with open(path, "rb") as f:
                source = f.read()
            try:
                totals.update(identifiers(source))
            except (SyntaxError, tokenize.TokenError, UnicodeDecodeError):
                failed += 1
        return (sum(totals.values()), len(totals), totals.most_common(10), failed)
