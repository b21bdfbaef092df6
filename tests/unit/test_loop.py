"""The loop with fake controllers over a real SQLite store: status, retries, stalls, wake-ups."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.api.groupmembership import GroupMembershipStatus
from reconciler.api.serverrestart import ServerRestartStatus
from reconciler.clients.hub import HubClient
from reconciler.context import Context
from reconciler.errors import PermanentError, TemporaryError
from reconciler.loop import Reconciler
from reconciler.manifests import parse_manifests
from reconciler.result import Outcome, Result
from reconciler.store import Store
from tests.helpers import gm, parsed
from vocabulary.settings import load_settings

SR = "apiVersion: jupyterhub-ds/v1\nkind: ServerRestart\nmetadata: {name: r}\nspec: {user: alice}\n"
KEY = ("GroupMembership", "a")


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


def make(store: Store, controllers: dict) -> Reconciler:
    ctx = Context(store=store, hub=HubClient("http://127.0.0.1:9/hub/api", "unused"), settings=load_settings({}))
    return Reconciler(ctx, controllers, poll_interval=0.05, resync_seconds=3600)


def apply_group(store: Store, name: str = "a", members: str = "alice") -> None:
    """Apply GroupMembership `name` (group g-<name>) to the store, as `hubctl apply` would."""
    store.apply(parsed(gm(name, f"g-{name}", members.split(", "))), "cli")


def test_success_writes_status_with_observed_generation(store: Store) -> None:
    calls = []

    async def ok(obj, ctx):
        calls.append(obj.generation)
        return Result(GroupMembershipStatus(phase="Ready", members=obj.spec["members"]))

    apply_group(store)
    r = make(store, {"GroupMembership": ok})
    assert asyncio.run(r.process(KEY)) is Outcome.SUCCESS
    status = store.get(*KEY).status
    assert (status["phase"], status["members"], status["observedGeneration"]) == ("Ready", ["alice"], 1)
    apply_group(store, members="alice, bob")
    asyncio.run(r.process(KEY))
    assert store.get(*KEY).status["observedGeneration"] == 2
    assert calls == [1, 2]


def test_unchanged_status_is_not_rewritten(store: Store) -> None:
    async def ok(obj, ctx):
        return Result(GroupMembershipStatus(phase="Ready"))

    apply_group(store)
    r = make(store, {"GroupMembership": ok})
    asyncio.run(r.process(KEY))
    with store.session() as s:
        from reconciler.tables import StatusRow

        first = s.get(StatusRow, KEY).updated
    asyncio.run(r.process(KEY))
    with store.session() as s:
        assert s.get(StatusRow, KEY).updated == first


def test_temporary_error_retries_with_backoff_and_says_why(store: Store) -> None:
    async def flaky(obj, ctx):
        raise TemporaryError("hub unreachable: connection refused")

    apply_group(store)
    r = make(store, {"GroupMembership": flaky})
    assert asyncio.run(r.process(KEY)) is Outcome.RETRY
    assert r.backoff.attempts(KEY) == 1
    assert r.queue.next_due_in() is not None  # a retry is planned
    status = store.get(*KEY).status
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Retrying")
    assert "connection refused (attempt 1)" in ready["message"]
    assert status.get("observedGeneration") is None  # not observed: it did not get through


def test_permanent_error_stalls_until_the_spec_changes(store: Store) -> None:
    calls = 0

    async def broken(obj, ctx):
        nonlocal calls
        calls += 1
        raise PermanentError("group name refused by the hub", reason="HubRefused")

    apply_group(store)
    r = make(store, {"GroupMembership": broken})
    assert asyncio.run(r.process(KEY)) is Outcome.FAILED
    assert asyncio.run(r.process(KEY)) is Outcome.SETTLED  # no retry loop
    assert calls == 1
    obj = store.get(*KEY)
    assert obj.status["phase"] == "Stalled"
    assert {c["type"]: c["status"] for c in obj.status["conditions"]} == {"Ready": "False", "Stalled": "True"}
    assert [e.reason for e in store.events(*KEY)][-1] == "HubRefused"
    apply_group(store, members="bob")  # a new generation is tried again
    assert asyncio.run(r.process(KEY)) is Outcome.FAILED
    assert calls == 2


def test_finished_one_shot_is_not_run_again(store: Store) -> None:
    runs = 0

    async def restart(obj, ctx):
        nonlocal runs
        runs += 1
        return Result(ServerRestartStatus(phase="Succeeded"))

    store.apply(parse_manifests(SR, "t.yaml"), "cli")
    r = make(store, {"ServerRestart": restart})
    assert asyncio.run(r.process(("ServerRestart", "r"))) is Outcome.SUCCESS
    assert asyncio.run(r.process(("ServerRestart", "r"))) is Outcome.SETTLED
    assert runs == 1


def test_deleted_resource_is_forgotten(store: Store) -> None:
    async def never(obj, ctx):
        raise AssertionError("called")

    r = make(store, {"GroupMembership": never})
    assert asyncio.run(r.process(("GroupMembership", "nope"))) is Outcome.GONE


def test_requeue_after_comes_back_on_time(store: Store) -> None:
    async def timed(obj, ctx):
        return Result(GroupMembershipStatus(phase="Ready"), requeue_after=30)

    apply_group(store)
    r = make(store, {"GroupMembership": timed})
    assert asyncio.run(r.process(KEY)) is Outcome.SUCCESS
    due = r.queue.next_due_in()
    assert due is not None and 29 < due <= 30  # the controller's wish, not the resync


def test_run_sees_a_store_change_and_stops_cleanly(store: Store) -> None:
    seen: list[tuple[str, int]] = []

    async def ok(obj, ctx):
        seen.append((obj.name, obj.generation))
        return Result(GroupMembershipStatus(phase="Ready"))

    async def main() -> None:
        r = make(store, {"GroupMembership": ok})
        task = asyncio.create_task(r.run())
        await asyncio.sleep(0.1)
        apply_group(store, "late")  # another process (the hub) writes the store
        for _ in range(100):
            if ("late", 1) in seen:
                break
            await asyncio.sleep(0.02)
        r.stop()
        await asyncio.wait_for(task, 5)
        await r.ctx.hub.close()

    apply_group(store, "early")
    asyncio.run(main())
    assert ("early", 1) in seen and ("late", 1) in seen


def test_progress_recorded_before_a_temporary_error_is_kept(store: Store) -> None:
    async def halfway(obj, ctx):
        if obj.status.get("step") == "starting":
            return Result(ServerRestartStatus(phase="Succeeded", step="done"))
        await ctx.progress(
            "ServerRestart", "r", ServerRestartStatus(phase="Running", step="starting", observed_generation=1)
        )
        raise TemporaryError("hub unreachable")

    store.apply(parse_manifests(SR, "t.yaml"), "cli")
    r = make(store, {"ServerRestart": halfway})
    assert asyncio.run(r.process(("ServerRestart", "r"))) is Outcome.RETRY
    status = store.get("ServerRestart", "r").status
    assert (status["phase"], status["step"]) == ("Running", "starting")  # the retry resumes from here
    assert asyncio.run(r.process(("ServerRestart", "r"))) is Outcome.SUCCESS
    assert store.get("ServerRestart", "r").status["step"] == "done"


def test_a_stored_spec_that_todays_rules_refuse_stalls_instead_of_crashing(store: Store) -> None:
    from reconciler.tables import ResourceRow

    async def never(obj, ctx):
        raise AssertionError("not called for an invalid spec")

    apply_group(store)
    with store.session() as s:  # as an older version could have stored it
        s.get(ResourceRow, KEY).spec = {"group": "g a", "members": ["alice"], "prune": False}
    r = make(store, {"GroupMembership": never})
    assert asyncio.run(r.process(KEY)) is Outcome.FAILED
    status = store.get(*KEY).status
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert (status["phase"], stalled["reason"]) == ("Stalled", "InvalidSpec")
    assert asyncio.run(r.process(KEY)) is Outcome.FAILED
    assert [e.reason for e in store.events(*KEY)].count("InvalidSpec") == 1  # said once


def test_outcomes_keep_their_label_values() -> None:
    """The Prometheus `result` label of jhds_reconciles_total is the outcome's string."""
    assert [o.value for o in Outcome] == [
        "success", "retry", "error", "failed", "suspended", "settled", "expired", "gone", "no-controller",
    ]  # fmt: skip
    assert f"{Outcome.NO_CONTROLLER}" == "no-controller" and Outcome.RETRY == "retry"


def test_the_context_is_built_complete_and_the_loop_attaches_nothing(store: Store) -> None:
    """The queue controllers wake keys in, the calendar and the sources' "sync now" are the
    context's from its construction; the loop drains that queue and changes nothing of it."""

    async def sync() -> None:
        return None

    hub = HubClient("http://127.0.0.1:9/hub/api", "unused")
    ctx = Context(store=store, hub=hub, settings=load_settings({}), sync_source=sync)
    before = dict(vars(ctx))
    r = Reconciler(ctx, {})
    assert vars(ctx).keys() == before.keys() and all(vars(ctx)[k] is v for k, v in before.items())
    assert r.queue is ctx.queue and ctx.sync_source is sync
    ctx.enqueue(KEY)
    ctx.schedules.enqueue(("Broadcast", "b"))  # a firing
    assert KEY in r.queue and ("Broadcast", "b") in r.queue


def test_only_a_key_woken_by_a_resync_may_read_the_snapshot(store: Store) -> None:
    seen: list[bool] = []

    async def ok(obj, ctx):
        seen.append(ctx.woken_by_resync(obj.key))
        return Result(GroupMembershipStatus(phase="Ready"))

    apply_group(store)
    r = make(store, {"GroupMembership": ok})

    async def main() -> None:
        await r.poll_store()  # woken by a change
        await r.process(r.queue.pop())
        r.queue.done(KEY)
        await r.resync()  # woken by the pass
        await r.process(r.queue.pop())
        r.queue.done(KEY)
        r.ctx.enqueue(KEY)  # then woken otherwise (an event, a firing): live again
        await r.process(r.queue.pop())
        r.queue.done(KEY)
        await r.resync()
        apply_group(store, members="bob")  # a change since the pass: live again
        await r.poll_store()
        await r.process(r.queue.pop())
        await r.ctx.hub.close()

    asyncio.run(main())
    assert seen == [False, True, False, False]
    assert not r.ctx.from_resync  # nothing left over for a later wake-up
