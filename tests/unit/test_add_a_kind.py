"""docs/architecture.md's "Adding a kind" checklist, followed step by step for a toy kind, so
the checklist cannot go stale: its types and controller are written here (steps 1 and 3),
registered by the checklist's lines (2 and 4), and a manifest goes through the real parser,
store (SQLite), loop and `hubctl get`. Step 6 (the docs) is checked for every real kind."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from reconciler import cli
from reconciler.api import REGISTRY, register
from reconciler.api.common import Column, Envelope, KindInfo, Status
from reconciler.api.fields import SpecModel, Username
from reconciler.clients.hub import HubClient
from reconciler.context import Context
from reconciler.controllers import CONTROLLERS
from reconciler.loop import Reconciler
from reconciler.manifests import ManifestError, parse_manifests
from reconciler.result import Result
from reconciler.store import Store, StoredResource
from vocabulary import scopes
from vocabulary.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

# --- step 1: reconciler/api/toy.py -------------------------------------------------------------


class ToySpec(SpecModel):
    user: Username
    times: int = Field(2, ge=1, le=5)  # a default and a rule


class Toy(Envelope):
    kind: Literal["Toy"]
    spec: ToySpec


class ToyStatus(Status):
    said: str | None = None


KIND = KindInfo(Toy, ToyStatus, one_shot=False, scope=scopes.WRITE_REQUESTS, columns=(Column("SAID", "status.said"),))

# --- step 3: reconciler/controllers/toy.py -----------------------------------------------------


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = ToySpec.model_validate(obj.spec)
    status = ToyStatus.load(obj.status)
    status.said = " ".join(["hello"] * spec.times) + f" {spec.user}"
    status.phase = "Ready"
    status.set_condition("Ready", "True", "Said", status.said)
    await ctx.event("Toy", obj.name, "Said", status.said)
    return Result(status)


MANIFEST = "apiVersion: jupyterhub-ds/v1\nkind: Toy\nmetadata: {name: greet}\nspec: {user: alice}\n"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    register(KIND)  # step 2: `register(toy.KIND)` in reconciler/api/__init__.py
    monkeypatch.setitem(CONTROLLERS, "Toy", reconcile)  # step 4: its line in CONTROLLERS
    yield
    del REGISTRY["Toy"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


def run_loop_until(store: Store, done: Any) -> None:
    """The real loop (store poll, lanes, workers, status writing) until `done()` holds."""
    ctx = Context(store=store, hub=HubClient("http://127.0.0.1:9/hub/api", "unused"), settings=load_settings({}))
    reconciler = Reconciler(ctx, CONTROLLERS, poll_interval=0.05, resync_seconds=3600)

    async def main() -> None:
        task = asyncio.create_task(reconciler.run())
        for _ in range(200):
            if done():
                break
            await asyncio.sleep(0.05)
        reconciler.stop()
        await asyncio.wait_for(task, 10)
        await ctx.hub.close()

    asyncio.run(main())


@pytest.fixture
def hub(store: Store) -> Iterator[list[str]]:
    """The hub's `GET /hub/api/resources/<kind>`, served from the store (what `hubctl get` reads)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            kind = self.path.removeprefix("/hub/api/resources/")
            data = json.dumps({"items": [r.manifest() for r in store.list(kind)]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield ["--url", f"http://127.0.0.1:{server.server_port}", "--token", "t"]
    server.shutdown()
    server.server_close()


def test_a_toy_kind_added_by_the_checklist_works_end_to_end(
    registered: None, store: Store, hub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ManifestError, match=r"spec.times: .*less than or equal to 5"):
        parse_manifests(MANIFEST.replace("{user: alice}", "{user: alice, times: 9}"), "toy.yaml")

    [toy] = parse_manifests(MANIFEST, "toy.yaml")
    assert isinstance(toy, Toy) and toy.spec.times == 2  # the default
    assert [r.action for r in store.apply([toy], "cli")] == ["created"]

    run_loop_until(store, lambda: (store.get("Toy", "greet").status or {}).get("phase") == "Ready")
    status = store.get("Toy", "greet").status
    assert status["said"] == "hello hello alice" and status["observedGeneration"] == 1
    assert "Said" in [e.reason for e in store.events("Toy", "greet")]

    assert cli.main([*hub, "get", "toys"]) == 0
    header, row = (line.split() for line in capsys.readouterr().out.splitlines())
    assert header == ["NAME", "OWNER", "GENERATION", "OBSERVED", "PHASE", "READY", "SAID", "AGE"]
    assert row[:6] == ["greet", "cli", "1", "1", "Ready", "True"] and row[6:9] == ["hello", "hello", "alice"]


def test_every_kind_is_in_the_docs_as_standing_or_one_shot() -> None:
    """Step 6: docs/reconciliation.md names each kind in its flavour's list."""
    text = (ROOT / "docs" / "reconciliation.md").read_text()
    standing = text[text.index("- **standing**") : text.index("- **one-shot**")]
    one_shot = text[text.index("- **one-shot**") : text.index("\n\n", text.index("- **one-shot**"))]
    for kind, info in REGISTRY.items():
        listed = re.search(rf"`{kind}`", one_shot if info.one_shot else standing)
        assert listed, f"{kind} is missing from the {'one-shot' if info.one_shot else 'standing'} kinds"
