"""GitOps: the manifests folder is desired state, applied file by file.

A file with an error is reported (log line and event with file and line) and nothing of it
is applied, while the other files still are. Resources whose file left the folder are
deleted only with `prune`, and only those this folder owns (owner `gitops`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..lanes import wait_event
from ..manifests import ManifestError, manifest_files, parse_manifests
from ..store import ApplyResult, ConflictError, Store

log = logging.getLogger("reconciler.gitops")
EVENT_KIND = "Manifest"


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in manifest_files([root]):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


@dataclass
class SyncReport:
    results: list[ApplyResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> message (with lines)


def sync(store: Store, root: Path, prune: bool) -> SyncReport:
    """Apply every valid file of `root` (each atomically); prune if asked. Synchronous."""
    report = SyncReport()
    if not root.is_dir():  # an unmounted folder is not "everything deleted": prune nothing
        report.errors[str(root)] = f"{root}: not a folder; nothing applied or pruned"
        return report
    keep: set[tuple[str, str]] = set()
    failed: set[str] = set()
    for path in manifest_files([root]):
        source = str(path.relative_to(root))
        try:
            resources = parse_manifests(path.read_text(), source)
            results = store.apply(resources, "gitops", sources={(r.kind, r.metadata.name): source for r in resources})
        except (ManifestError, ConflictError) as e:
            failed.add(source)
            report.errors[source] = str(e)
            continue
        except OSError as e:
            failed.add(source)
            report.errors[source] = f"{source}: cannot read: {e}"
            continue
        keep |= {(r.kind, r.metadata.name) for r in resources}
        report.results += results
    if prune:
        report.results += store.prune("gitops", keep, failed)
    return report


@dataclass
class GitOpsSource:
    store: Store
    root: Path
    prune: bool = False
    interval: float = 1.0
    # Also applied this often when no file changed: a resource changed through the API or
    # panel is put back from its file (GitOps owns what it declares).
    resync: float = 30.0
    _last: tuple | None = None
    _last_errors: dict[str, str] = field(default_factory=dict)

    async def sync_once(self) -> SyncReport:
        report = await asyncio.to_thread(sync, self.store, self.root, self.prune)
        for r in report.results:
            if r.action != "unchanged":
                log.info("gitops: %s/%s %s", r.kind.lower(), r.name, r.action)
        for source, message in report.errors.items():
            if self._last_errors.get(source) != message:  # once per distinct error, not every poll
                for line in message.splitlines():
                    log.error("gitops: %s", line)
                await asyncio.to_thread(
                    self.store.add_event, EVENT_KIND, source, "InvalidManifest", message, "Warning", "gitops"
                )
        self._last_errors = report.errors
        return report

    async def run(self, stop: asyncio.Event) -> None:
        log.info("gitops: watching %s (prune: %s)", self.root, "on" if self.prune else "off")
        last_sync = 0.0
        while not stop.is_set():
            try:
                current = await asyncio.to_thread(fingerprint, self.root) if self.root.is_dir() else ()
                if current != self._last or time.monotonic() - last_sync >= self.resync:
                    await self.sync_once()
                    self._last, last_sync = current, time.monotonic()
            except Exception:
                log.exception("gitops: sync of %s failed; trying again", self.root)
            await wait_event(stop, self.interval)
