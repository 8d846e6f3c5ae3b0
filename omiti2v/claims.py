"""Claims: N launches on one run folder share a stage's work, each sample done once.

Before a stage works on a sample it claims it: an exclusive create (O_CREAT|O_EXCL, NFS-safe) of
`.claims/<scope>/<sample>.claim` in the run folder, made by filelock's SoftFileLease. The file records the
owner's pid, host and process start; a thread of the owner refreshes its mtime (the heartbeat) every
stale_after_s / 3 seconds. Other launches skip claimed samples and take the next free one. A claim is taken
over (and the takeover logged) when its owner is gone: at once when it is on this host and its pid is dead, else
once its heartbeat has stood still for `claims.stale_after_s`. A finished sample's claim is released (deleted).

A launch that has run out of free samples waits for the ones others still hold, taking over those whose owner
dies, so every launch returns only when the stage's work is finished (or recorded as failed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import LeaseSettingsMismatch, SoftFileLease, Timeout

from .errors import SetupError
from .runs import read_jsonl, remove_abandoned_lease, write_faults_named

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ClaimSettings:
    """The `claims` config group: when a silent claim counts as abandoned, how often a waiting launch looks."""

    stale_after_s: float = 300.0
    poll_s: float = 2.0

    @classmethod
    def from_config(cls, node: Mapping | None) -> ClaimSettings:
        node = dict(node or {})
        settings = cls(float(node.get("stale_after_s", cls.stale_after_s)), float(node.get("poll_s", cls.poll_s)))
        if settings.stale_after_s <= 0 or settings.poll_s <= 0:
            raise SetupError(f"claims: stale_after_s and poll_s must be > 0, got {settings}")
        return settings


def _file_name(key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
    return f"{safe}.claim" if safe == key else f"{safe}.{hashlib.sha256(key.encode()).hexdigest()[:8]}.claim"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """This process's claims on the samples of one stage (`scope`) in one run folder; a context manager that
    releases whatever it still holds on exit."""

    def __init__(self, run_path: str | os.PathLike, scope: str, settings: ClaimSettings = ClaimSettings()):
        self.folder = Path(run_path) / ".claims" / scope
        self.settings = settings
        self.held: dict[str, SoftFileLease] = {}
        self.leases: dict[str, SoftFileLease] = {}  # kept per key: takeover by age needs the same observer
        self.takeovers: list[dict[str, Any]] = []

    def path(self, key: str) -> Path:
        return self.folder / _file_name(key)

    def _lease(self, key: str) -> SoftFileLease:
        if key not in self.leases:
            self.leases[key] = SoftFileLease(self.path(key), lease_duration=self.settings.stale_after_s)
        return self.leases[key]

    def try_claim(self, key: str) -> bool:
        """Claim `key` without waiting: True when this process now holds it (free, or taken over)."""
        if key in self.held:
            return True
        lease = self._lease(key)
        with write_faults_named(self.path(key)):
            self.folder.mkdir(parents=True, exist_ok=True)
            previous, heartbeat = lease.owner, _mtime(self.path(key))
            for retry in (False, True):  # once more after removing a marker a killed launch left empty
                try:
                    lease.acquire(blocking=False)
                    break
                except Timeout:
                    if retry or not remove_abandoned_lease(self.path(key)):
                        return False
                except LeaseSettingsMismatch as exc:
                    raise SetupError(f"{exc}: give every launch on this run folder the same "
                                     "claims.stale_after_s") from exc
        self.held[key] = lease
        if heartbeat is not None:  # the file was there: a takeover, unless its owner released it meanwhile
            self._note_takeover(key, previous, heartbeat)
        return True

    def _note_takeover(self, key: str, previous, heartbeat: float) -> None:
        if previous is None:  # a marker its writer never finished (killed between create and write)
            pid, host, why = None, None, "its owner never finished writing it"
        else:
            pid, host = previous.pid, previous.hostname
            if host == socket.gethostname() and not _pid_alive(pid):
                why = "its process is gone"
            elif time.time() - heartbeat >= self.settings.stale_after_s / 2:
                why = f"no heartbeat for {self.settings.stale_after_s:g}s"
            else:
                return
        self.takeovers.append({"key": key, "pid": pid, "host": host, "reason": why})
        log.warning("claim %s: took over from pid %s on %s (%s)", self.path(key), pid, host, why)

    def release(self, key: str) -> None:
        lease = self.held.pop(key, None)
        if lease is not None:
            lease.release()

    def owner(self, key: str) -> str:
        record = self._lease(key).owner
        return "?" if record is None else f"pid {record.pid} on {record.hostname}"

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc_info) -> None:
        for key in list(self.held):
            self.release(key)


class LogWatch:
    """Counts of a stage log's records per sample when the watch starts; `changed` names the samples that got
    a record since (another launch worked on them: they are settled for this launch)."""

    def __init__(self, path: str | os.PathLike, counts: Callable[[dict], bool] = lambda rec: True):
        self.path, self.counts = Path(path), counts
        self.start = self._count()

    def _count(self) -> Counter:
        return Counter(r.get("sample_id") for r in read_jsonl(self.path) if self.counts(r))

    def changed(self, keys: Iterable[str]) -> set[str]:
        now = self._count()
        return {k for k in keys if now[k] > self.start[k]}


def claimed_batches(claims: Claims, items: Iterable[T], size: int, key: Callable[[T], Hashable],
                    settled: Callable[[list[str]], set[str]]) -> Iterator[list[T]]:
    """Batches of up to `size` items this process claimed; items whose claim another launch holds are skipped
    and retried once the free ones are done, until every one is settled or done here.

    `settled(keys)` re-checks claimed keys (another launch may have finished one since the list was made); a
    batch's claims are released when the caller asks for the next batch, i.e. after it recorded the results.
    """
    waiting = list(items)
    batch: list[T] = []
    first_pass, last_note = True, 0.0
    while waiting:
        held_elsewhere = []
        for item in waiting:
            if not claims.try_claim(str(key(item))):
                held_elsewhere.append(item)
                continue
            batch.append(item)
            if len(batch) == size:
                yield from _settle_and_yield(claims, batch, key, settled)
                batch = []
        if batch:
            yield from _settle_and_yield(claims, batch, key, settled)
            batch = []
        waiting = held_elsewhere
        if waiting:
            if first_pass or time.monotonic() - last_note > 60:
                owners = sorted({claims.owner(str(key(i))) for i in waiting})
                log.info("%s: waiting for %d sample(s) other launches hold (%s)", claims.folder.name, len(waiting),
                         ", ".join(owners[:4]))
                last_note = time.monotonic()
            first_pass = False
            time.sleep(claims.settings.poll_s)


def _settle_and_yield(claims: Claims, batch: list[T], key: Callable[[T], Hashable],
                      settled: Callable[[list[str]], set[str]]) -> Iterator[list[T]]:
    keys = [str(key(item)) for item in batch]
    done = settled(keys)
    for k in done:
        claims.release(k)
    todo = [item for item, k in zip(batch, keys, strict=True) if k not in done]
    try:
        if todo:
            yield todo
    finally:
        for k in keys:
            claims.release(k)
