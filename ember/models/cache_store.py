"""Where the response cache keeps answers: an SQLite file, or this process's memory.

A store maps a key (a request's digest) to the request's text and the answer's text;
``ember.models.response_cache`` decides what is a key and what an answer is.

* :class:`SQLiteStore`: one file shared by threads and processes. Each thread has its
  own connection; the file is in WAL mode, so readers never wait for a writer; a
  statement waits at most ``BUSY_MS`` for another writer, then fails (the cache then
  counts an error and the call is a miss: never a long wait). Each write is one
  ``BEGIN IMMEDIATE`` transaction, so a crash leaves the old entry or the new one.
  Eviction is least recently used, past a size in bytes, in the same transaction.
* :class:`MemoryStore`: the same in a dict, for one process.

A file that is not an Ember cache (another program's database, a damaged file, a newer
format) raises :class:`CacheError` when the store is opened.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pathlib
import sqlite3
import threading
import time
from types import TracebackType
from typing import Protocol

from ember.models.errors import ModelError

__all__ = [
    "BUSY_MS",
    "FORMAT",
    "CacheError",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "default_path",
]

FORMAT = 1
"""The layout of stored requests and answers; part of every key, so a new layout misses."""

BUSY_MS = 200
"""Milliseconds one SQLite statement waits for another process's write before failing."""


class CacheError(ModelError):
    """The cache's file cannot be used: not an Ember cache, damaged, or not writable.

    Attributes:
        path: The file.
    """

    def __init__(self, path: str, problem: str, fix: str | None = None) -> None:
        self.path = path
        if fix is None:
            fix = (
                "Delete it (with its -wal and -shm files; only cached answers are lost) or "
                "pass another path to models.cache()"
            )
        super().__init__(f"the response cache {path} cannot be used: {problem}. {fix}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuilt_cache_error, (self.path, str(self)))


def _rebuilt_cache_error(path: str, message: str) -> CacheError:
    error = CacheError.__new__(CacheError)
    error.path = path
    Exception.__init__(error, message)
    return error


class Store(Protocol):
    """Where a cache keeps its answers; every method is safe from any thread."""

    @property
    def path(self) -> str | None:
        """The file, or None in memory."""

    def get(self, key: str) -> tuple[str, str] | None:
        """``(request text, answer text)`` stored under ``key``, or None."""

    def put(self, key: str, request: str, answer: str, max_bytes: int) -> int:
        """Store an answer; returns how many older ones were evicted to stay under ``max_bytes``."""

    def drop(self, key: str) -> None:
        """Forget ``key`` (a damaged entry)."""

    def size(self) -> tuple[int, int]:
        """``(entries, bytes)``."""

    def clear(self) -> None:
        """Forget every answer."""

    def close(self) -> None:
        """Release what the store holds open."""


class MemoryStore:
    """Answers in this process's memory, least recently used first out."""

    path: str | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> tuple[str, str] | None:
        """``(request text, answer text)`` stored under ``key``, or None; marks it used."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: str, request: str, answer: str, max_bytes: int) -> int:
        """Store an answer; returns how many least recently used ones were evicted."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _size(*old)
            self._entries[key] = (request, answer)
            self._bytes += _size(request, answer)
            evicted = 0
            while self._bytes > max_bytes and len(self._entries) > 1:
                _, gone = self._entries.popitem(last=False)
                self._bytes -= _size(*gone)
                evicted += 1
            return evicted

    def drop(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            gone = self._entries.pop(key, None)
            if gone is not None:
                self._bytes -= _size(*gone)

    def size(self) -> tuple[int, int]:
        """``(entries, bytes)``."""
        with self._lock:
            return len(self._entries), self._bytes

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def close(self) -> None:
        """Nothing to release."""


def _size(request: str, answer: str) -> int:
    return len(request.encode("utf-8", "surrogatepass")) + len(
        answer.encode("utf-8", "surrogatepass")
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ember_cache (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    answer TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_use ON responses (used);
"""

# Deletes the least recently used rows beyond max_bytes (the newest kept first).
_EVICT = """
DELETE FROM responses WHERE key IN (
    SELECT key FROM (
        SELECT key, SUM(size) OVER (ORDER BY used DESC, key) AS kept FROM responses
    ) WHERE kept > ?
)
"""


class SQLiteStore:
    """Answers in one SQLite file, shared by threads and processes.

    Each thread has its own connection (SQLite connections are not shared between
    threads here); the file is in WAL mode, so readers never wait for a writer, and a
    writer waits at most a fraction of a second for another, then gives up (the
    caller counts an error: the answer is simply not stored).

    Args:
        path: The file; its folder is created if missing.

    Raises:
        CacheError: The file is not an SQLite database, is damaged, holds another
            program's tables or a newer format, or cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(pathlib.Path(path).expanduser())
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            pathlib.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = self._connection()
            self._prepare(connection)
        except sqlite3.DatabaseError as error:  # not a database, damaged, read-only
            self.close()
            raise CacheError(self.path, f"SQLite says {str(error)!r}") from error
        except OSError as error:
            self.close()
            raise CacheError(self.path, f"{error.strerror or error}") from error

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Create the tables (once, in any process), check the format."""
        connection.execute("PRAGMA journal_mode=WAL").fetchone()
        with _transaction(connection):
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "ember_cache" not in tables:
                names = ", ".join(sorted(tables))
                raise CacheError(
                    self.path,
                    f"it is an SQLite database of another program (tables: {names})",
                    "Pass another path to models.cache(); that file is not a cache to delete",
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            row = connection.execute("SELECT value FROM ember_cache WHERE name='format'").fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO ember_cache (name, value) VALUES ('format', ?)", (str(FORMAT),)
                )
            elif row[0] != str(FORMAT):
                raise CacheError(
                    self.path,
                    f"it was written in cache format {row[0]} by another version of ember-xcs "
                    f"(this one reads format {FORMAT})",
                )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints (WAL)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def get(self, key: str) -> tuple[str, str] | None:
        """``(request text, answer text)`` stored under ``key``, or None; marks it used."""
        connection = self._connection()
        row = connection.execute(
            "SELECT request, answer FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        with contextlib.suppress(sqlite3.OperationalError):  # a busy file: not marked used
            connection.execute("UPDATE responses SET used = ? WHERE key = ?", (time.time(), key))
        return str(row[0]), str(row[1])

    def put(self, key: str, request: str, answer: str, max_bytes: int) -> int:
        """Store an answer; returns how many least recently used ones were evicted."""
        connection = self._connection()
        now = time.time()
        with _transaction(connection):
            connection.execute(
                "INSERT OR REPLACE INTO responses (key, request, answer, size, created, used) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, request, answer, _size(request, answer), now, now),
            )
            total = connection.execute("SELECT total(size) FROM responses").fetchone()[0]
            if total <= max_bytes:
                return 0
            return connection.execute(_EVICT, (max_bytes,)).rowcount

    def drop(self, key: str) -> None:
        """Forget ``key``."""
        connection = self._connection()
        with _transaction(connection):
            connection.execute("DELETE FROM responses WHERE key = ?", (key,))

    def size(self) -> tuple[int, int]:
        """``(entries, bytes)``."""
        row = self._connection().execute("SELECT count(*), total(size) FROM responses").fetchone()
        return int(row[0]), int(row[1])

    def clear(self) -> None:
        """Forget every answer."""
        connection = self._connection()
        with _transaction(connection):
            connection.execute("DELETE FROM responses")
        with contextlib.suppress(sqlite3.OperationalError):  # another process reads: later
            connection.execute("VACUUM")  # give the space back

    def close(self) -> None:
        """Release what the store holds open."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


def default_path() -> pathlib.Path:
    r"""Where ``models.cache()`` keeps answers without a path.

    ``$EMBER_CACHE_DIR/responses.sqlite3`` when that variable is set, otherwise in the
    user cache directory (``~/.cache/ember`` on Linux, ``~/Library/Caches/ember`` on
    macOS, ``%LOCALAPPDATA%\ember\Cache`` on Windows).
    """
    folder = os.environ.get("EMBER_CACHE_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_cache_dir("ember", appauthor=False)
    return pathlib.Path(folder).expanduser() / "responses.sqlite3"
