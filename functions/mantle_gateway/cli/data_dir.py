"""The data directory of `serve` (`--data-dir`, default `.mantle-gateway/`): what outlives a run.

- `dynamodb.json`: the embedded DynamoDB's tables (keys, limits, usage; `local_snapshot`),
  saved at exit (Ctrl-C, SIGTERM) and every 30 s while something changed, restored at start.
  Each save writes a temporary file and renames it over the last one, so a crash mid-save
  leaves the previous snapshot whole.
- `demo-key`: the demo key's secret (mode 0600), so a restart can show the same key again.
  DynamoDB holds only its digest, as for every key; this file is the one place the secret is
  kept, and only for the demo key.

The directory is created with mode 0700: the snapshot holds usage and key metadata.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mantle_gateway.errors import ConfigError

if TYPE_CHECKING:
    from mantle_gateway.cli.local_env import EmbeddedDynamoDB

SNAPSHOT_FILE = "dynamodb.json"
DEMO_KEY_FILE = "demo-key"
SAVE_EVERY_SECONDS = 30.0


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshot_file = path / SNAPSHOT_FILE
        self.demo_key_file = path / DEMO_KEY_FILE

    @classmethod
    def open(cls, path: str | Path) -> DataDir:
        """The directory, created (0700) if missing; a path that cannot be one stops serve."""
        directory = Path(path).expanduser().absolute()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--data-dir: cannot use {directory}: {exc.strerror}") from exc
        return cls(directory)

    def restore(self, dynamodb: EmbeddedDynamoDB) -> int | None:
        """Load the snapshot into `dynamodb`: the number of items, or None when there is none.
        A snapshot that cannot be read stops serve with one line naming the file."""
        from mantle_gateway.cli.local_snapshot import SnapshotError

        try:
            text = self.snapshot_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(str(exc)) from exc
        try:
            return dynamodb.restore(json.loads(text))
        except ValueError as exc:  # json's JSONDecodeError and SnapshotError are ValueErrors
            reason = str(exc) if isinstance(exc, SnapshotError) else f"invalid JSON ({exc})"
            raise self._unreadable(reason) from exc

    def _unreadable(self, reason: str) -> ConfigError:
        return ConfigError(
            f"cannot restore local data from {self.snapshot_file}: {reason}. Move the file "
            "away to start with empty tables, or run with --ephemeral."
        )

    def save(self, dynamodb: EmbeddedDynamoDB) -> None:
        """Write the snapshot whole beside the last one, then rename it over it."""
        _write_atomically(
            self.snapshot_file, json.dumps(dynamodb.snapshot(), separators=(",", ":"))
        )

    def demo_secret(self) -> str | None:
        try:
            secret = self.demo_key_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.demo_key_file}: {exc.strerror}") from exc
        return secret or None

    def remember_demo_secret(self, secret: str) -> None:
        _write_atomically(self.demo_key_file, secret + "\n")

    def keep(self, dynamodb: EmbeddedDynamoDB, every: float = SAVE_EVERY_SECONDS) -> Saver:
        """Save every `every` seconds while something changed, and once more on `close`."""
        return Saver(self, dynamodb, every)


class Saver:
    """A background thread that saves the snapshot when DynamoDB served writes since the last
    save. A failed periodic save is reported on stderr and tried again at the next tick."""

    def __init__(self, data: DataDir, dynamodb: EmbeddedDynamoDB, every: float) -> None:
        self._data = data
        self._dynamodb = dynamodb
        self._every = every
        self._saved_at = dynamodb.writes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="data-dir-saver", daemon=True)
        self._thread.start()

    def save_if_changed(self) -> bool:
        """True when a snapshot was written now."""
        with self._lock:
            writes = self._dynamodb.writes
            if writes == self._saved_at:
                return False
            self._data.save(self._dynamodb)
            self._saved_at = writes
            return True

    def close(self) -> None:
        """Stop the thread and save what changed since its last save."""
        self._stop.set()
        self._thread.join()
        self.save_if_changed()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.save_if_changed()
            except OSError as exc:
                print(
                    f"mantle-gateway: could not save {self._data.snapshot_file}: {exc.strerror}",
                    file=sys.stderr,
                    flush=True,
                )


def _write_atomically(path: Path, text: str) -> None:
    """Owner-only (0600) file written to a temporary name, flushed to disk, then renamed."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
