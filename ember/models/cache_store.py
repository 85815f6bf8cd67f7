"""Where the response cache keeps answers: an SQLite file, or this process's memory.

A store maps a key (a request's digest) to the request's text and the answer's text;
``ember.models.response_cache`` decides what is a key and what an answer is.

* :class:`SQLiteStore`: one file shared by threads and processes. Threads borrow
  connections (as many open as threads use the file at once); the file is in WAL
  mode, so readers never wait for a writer; a statement waits at most ``BUSY_MS`` for
  another writer, then fails (the cache then counts an error and the call is a miss:
  never a long wait). Each write is one
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
import weakref
from collections.abc import Iterator
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
CREATE TRIGGER IF NOT EXISTS bytes_added AFTER INSERT ON responses BEGIN
    UPDATE ember_cache SET value = CAST(value AS INTEGER) + new.size WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS bytes_removed AFTER DELETE ON responses BEGIN
    UPDATE ember_cache SET value = CAST(value AS INTEGER) - old.size WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS bytes_changed AFTER UPDATE OF size ON responses BEGIN
    UPDATE ember_cache SET value = CAST(value AS INTEGER) - old.size + new.size
    WHERE name = 'bytes';
END;
"""
"""The tables, and triggers keeping the stored bytes (``ember_cache`` row ``bytes``) up to
date in the transaction of each change, so a store never sums the table."""

_STORE = """
INSERT INTO responses (key, request, answer, size, created, used) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    request = excluded.request, answer = excluded.answer, size = excluded.size,
    created = excluded.created, used = excluded.used
"""


_KEPT = 8  # open connections a store keeps between uses
_USE_GRAIN = 10.0  # seconds: a hit marks its entry used only if it was not used more recently
_open: weakref.WeakValueDictionary[str, SQLiteStore] = weakref.WeakValueDictionary()
_open_lock = threading.Lock()


class SQLiteStore:
    """Answers in one SQLite file, shared by threads and processes.

    A thread borrows a connection for its statements and gives it back (one thread
    uses a connection at a time; a few stay open between uses); the file is in WAL mode,
    so readers never wait for a writer, and a writer waits at most ``BUSY_MS`` for
    another, then gives up (the caller counts an error: the answer is simply not
    stored). The store stays usable after :meth:`close`: it opens connections again.

    Args:
        path: The file; its folder is created if missing.

    Raises:
        CacheError: The file is not an SQLite database, is damaged, holds another
            program's tables or a newer format, or cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(pathlib.Path(path).expanduser())
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []  # connections no thread is using
        self.check()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SQLiteStore:
        """The store of ``path`` in this process: one per file, its connections shared.

        A store opened before is checked again: the file may have been deleted or
        replaced since.

        Raises:
            CacheError: As the constructor.
        """
        key = os.path.abspath(pathlib.Path(path).expanduser())
        with _open_lock:
            found = _open.get(key)
            if found is None:
                found = _open[key] = cls(key)
                return found
        found.close()  # connections open before may hold a file deleted since
        found.check()
        return found

    def check(self) -> None:
        """Make the file a cache if it is empty or missing; check it is one.

        Raises:
            CacheError: Not an SQLite database, damaged, another program's tables, another
                format, or the file cannot be made.
        """
        try:
            pathlib.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as connection:
                self._prepare(connection)
        except sqlite3.DatabaseError as error:  # not a database, damaged, read-only
            self.close()
            busy = getattr(error, "sqlite_errorcode", None) in (
                sqlite3.SQLITE_BUSY,
                sqlite3.SQLITE_LOCKED,
            )
            fix = (  # locked by another program: nothing wrong with the file
                "Another process holds it locked; try again once it is done, or pass "
                "another path to models.cache()"
                if busy
                else None
            )
            raise CacheError(self.path, f"SQLite says {str(error)!r}", fix) from error
        except CacheError:  # another program's database, another format
            self.close()
            raise
        except OSError as error:
            self.close()
            raise CacheError(self.path, f"{error.strerror or error}") from error

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Create the tables (once, in any process), check the format.

        A file that is a cache already is only read: another process writing it at this
        moment (readers do not wait in WAL mode) does not make opening it fail.
        """
        connection.execute("PRAGMA journal_mode=WAL").fetchone()
        if self._checked(connection):
            return
        with _transaction(connection):
            if self._checked(connection):  # another process made it meanwhile
                return
            for statement in _statements(_SCHEMA):
                connection.execute(statement)
            connection.execute(
                "INSERT OR REPLACE INTO ember_cache (name, value) VALUES ('format', ?)",
                (str(FORMAT),),
            )
            connection.execute(
                "INSERT OR REPLACE INTO ember_cache (name, value) "
                "VALUES ('bytes', (SELECT CAST(total(size) AS INTEGER) FROM responses))"
            )

    def _checked(self, connection: sqlite3.Connection) -> bool:
        """Whether the file is a cache of this format already (False: nothing in it yet).

        Raises:
            CacheError: It holds another program's tables, or another format.
        """
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
        if not tables:
            return False
        row = connection.execute("SELECT value FROM ember_cache WHERE name='format'").fetchone()
        if row is not None and row[0] != str(FORMAT):
            raise CacheError(
                self.path,
                f"it was written in cache format {row[0]} by another version of ember-xcs "
                f"(this one reads format {FORMAT})",
            )
        if row is None or "responses" not in tables:
            return False
        counted = connection.execute("SELECT 1 FROM ember_cache WHERE name='bytes'").fetchone()
        return counted is not None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread's statements, given back after them.

        Connections are lent, not kept per thread: as many are open as threads use the
        file at once (up to ``_KEPT`` stay open between uses), whatever threads come
        and go.
        """
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints (WAL)
        try:
            yield connection
        finally:
            if connection.in_transaction:  # a statement failed inside one: not lent so
                connection.close()
            else:
                with self._lock:
                    kept = len(self._idle) < _KEPT
                    if kept:
                        self._idle.append(connection)
                if not kept:
                    connection.close()

    def get(self, key: str) -> tuple[str, str] | None:
        """``(request text, answer text)`` stored under ``key``, or None; marks it used."""
        with self._connection() as connection:
            row = connection.execute(
                "SELECT request, answer, used FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            if now - row[2] > _USE_GRAIN:  # not every hit writes (it would wait for writers)
                with contextlib.suppress(sqlite3.OperationalError):  # busy: not marked now
                    connection.execute("UPDATE responses SET used = ? WHERE key = ?", (now, key))
        return str(row[0]), str(row[1])

    def put(self, key: str, request: str, answer: str, max_bytes: int) -> int:
        """Store an answer; returns how many least recently used ones were evicted."""
        now = time.time()
        with self._connection() as connection, _transaction(connection):
            connection.execute(_STORE, (key, request, answer, _size(request, answer), now, now))
            row = connection.execute("SELECT value FROM ember_cache WHERE name='bytes'").fetchone()
            total = int(row[0])
            evicted = 0
            while total > max_bytes:  # the least recently used go, oldest first (the index)
                oldest = connection.execute(
                    "SELECT key, size FROM responses WHERE key != ? ORDER BY used LIMIT 64",
                    (key,),
                ).fetchall()
                if not oldest:
                    break
                gone = []
                for old_key, size in oldest:
                    if total <= max_bytes:
                        break
                    gone.append((old_key,))
                    total -= size
                connection.executemany("DELETE FROM responses WHERE key = ?", gone)
                evicted += len(gone)
            return evicted

    def drop(self, key: str) -> None:
        """Forget ``key``."""
        with self._connection() as connection, _transaction(connection):
            connection.execute("DELETE FROM responses WHERE key = ?", (key,))

    def size(self) -> tuple[int, int]:
        """``(entries, bytes)``."""
        with self._connection() as connection:
            row = connection.execute("SELECT count(*), total(size) FROM responses").fetchone()
        return int(row[0]), int(row[1])

    def clear(self) -> None:
        """Forget every answer."""
        with self._connection() as connection:
            with _transaction(connection):
                connection.execute("DELETE FROM responses")
            with contextlib.suppress(sqlite3.OperationalError):  # another process reads: later
                connection.execute("VACUUM")  # give the space back

    def close(self) -> None:
        """Close the connections no thread is using (the others close when given back)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _statements(script: str) -> list[str]:
    """The statements of an SQL script, whole (a trigger's body holds ``;`` too)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


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
