"""The Broadcast controller's own logic on a real SQLite store and real local HTTP endpoints:
resuming an interrupted run, and when runs are due."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp import web

from reconciler.api.broadcast import BroadcastSpec, BroadcastStatus
from reconciler.clients import lab
from reconciler.clients.hub import HubClient
from reconciler.clients.lab import Result, Target
from reconciler.context import Context
from reconciler.controllers import broadcast
from reconciler.manifests import parse_manifests
from reconciler.schedules import Schedules
from reconciler.store import Store, StoredResource
from vocabulary.settings import load_settings

DOC = "apiVersion: jupyterhub-ds/v1\nkind: Broadcast\nmetadata: {name: b}\nspec: {message: hello}\n"


class FakeEngine:
    """Only what a resumed run asks the engine: each server's own token."""

    async def server_tokens(self, platform: str) -> dict[tuple[str, str], str]:
        return {(u, ""): f"token-{u}" for u in ("ann", "bob", "cid")}


def test_a_resumed_run_sends_only_what_has_no_final_outcome(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    store.apply(parse_manifests(DOC, "b.yaml"), "cli")

    async def main() -> tuple[list[str], dict]:
        received: list[str] = []

        async def ingest(request: web.Request) -> web.Response:
            received.append(request.match_info["user"])
            return web.json_response({"success": True})

        app = web.Application()
        app.router.add_post("/user/{user}/jupyterlab-notifications-extension/ingest", ingest)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

        ctx = Context(store=store, hub=HubClient(base, "unused"), settings=load_settings({}), engine=FakeEngine())
        run = "20261201T090000.000000Z"
        url = base + "/user/{}/" + lab.INGEST
        ctx.deliveries.start_run("b", run, [(u, "", url.format(u)) for u in ("ann", "bob", "cid")])
        # The earlier process delivered to ann, then died.
        ctx.deliveries.record("b", run, [Result(Target("ann", "", url.format("ann"), "t"), "delivered", 200)])
        status = {
            "phase": "Delivering",
            "observedGeneration": 1,
            "lastScheduled": "2026-12-01T09:00:00+00:00",
            "currentRun": {"id": run, "total": 3, "startedAt": "2026-12-01T09:00:00+00:00"},
        }
        store.write_status("Broadcast", "b", status)
        body = (await broadcast.reconcile(store.get("Broadcast", "b"), ctx)).status.dump()
        await runner.cleanup()
        await ctx.hub.close()
        return received, body

    received, body = asyncio.run(main())
    assert sorted(received) == ["bob", "cid"]  # ann was not sent again
    assert body["phase"] == "Completed" and body.get("currentRun") is None
    assert body["counts"]["delivered"] == 3 and body["counts"]["total"] == 3
    assert [e.reason for e in store.events("Broadcast", "b")][-2:] == ["Resuming", "Delivered"]
    store.close()


def test_when_runs_are_due(tmp_path) -> None:
    created = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    ctx = Context(store=store, hub=HubClient("http://127.0.0.1:9", "unused"), settings=load_settings({}))

    def obj(spec: dict) -> StoredResource:
        return StoredResource("Broadcast", "b", "cli", None, {}, spec, 1, 1, created, created)

    now_spec = {"message": "m"}
    assert (
        broadcast.take_firing(ctx, obj(now_spec), BroadcastSpec.model_validate(now_spec), BroadcastStatus()) == created
    )
    done = BroadcastStatus(last_scheduled=created)
    assert broadcast.take_firing(ctx, obj(now_spec), BroadcastSpec.model_validate(now_spec), done) is None

    at = created + timedelta(hours=2)
    at_spec = {"message": "m", "schedule": {"at": at.isoformat()}}
    result = broadcast.scheduled(ctx, obj(at_spec), BroadcastSpec.model_validate(at_spec), BroadcastStatus())
    assert (result.status.phase, result.status.next_run) == ("Scheduled", at)
    fired = BroadcastStatus(last_scheduled=at)
    result = broadcast.scheduled(ctx, obj(at_spec), BroadcastSpec.model_validate(at_spec), fired)
    assert result.status.phase == "Completed"  # fires once

    cron_spec = {"message": "m", "schedule": {"cron": "0 17 * * fri"}}
    spec = BroadcastSpec.model_validate(cron_spec)
    first = broadcast.scheduled(ctx, obj(cron_spec), spec, BroadcastStatus()).status.next_run
    assert first == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    # Every firing a run of its own: after that one (as rebuilt at a restart), a week later.
    ctx.schedules = Schedules(lambda key: None)
    later = broadcast.scheduled(ctx, obj(cron_spec), spec, BroadcastStatus(last_scheduled=first)).status.next_run
    assert later == first + timedelta(days=7)
    store.close()


def test_runs_kept_by_the_history_limits_and_forbid_skips_an_overlapping_firing() -> None:
    from reconciler.api.broadcast import BroadcastRun
    from reconciler.broadcast_runs import keep_history

    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    runs = [
        BroadcastRun(id=f"r{i}", outcome="Failed" if i % 3 == 0 else "Succeeded", scheduled_for=t0) for i in range(10)
    ]
    spec = BroadcastSpec.model_validate({"message": "m", "successfulRunsHistoryLimit": 2, "failedRunsHistoryLimit": 1})
    assert [r.id for r in keep_history(spec, runs)] == ["r0", "r1", "r2"]  # newest first: 1 failed, 2 succeeded

    previous = BroadcastRun(id="p", scheduled_for=t0, finished_at=t0 + timedelta(seconds=90))
    status = BroadcastStatus(runs=[previous])
    during, after = t0 + timedelta(seconds=60), t0 + timedelta(seconds=120)
    forbid = BroadcastSpec.model_validate({"message": "m", "schedule": {"cron": "* * * * *"}})
    allow = BroadcastSpec.model_validate(
        {"message": "m", "schedule": {"cron": "* * * * *"}, "concurrencyPolicy": "Allow"}
    )
    assert broadcast.overlaps_previous_run(forbid, status, during)
    assert not broadcast.overlaps_previous_run(forbid, status, after)
    assert not broadcast.overlaps_previous_run(allow, status, during)
