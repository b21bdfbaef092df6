"""The delivery core against a real local aiohttp app standing in for lab ingest endpoints."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from reconciler.clients.lab import Limits, Target, deliver_all

PAYLOAD = {"message": "Hub restarts at 18:00", "type": "info", "autoClose": 5000, "immediate": True}


async def serve(behaviour: dict[str, str]) -> tuple[web.AppRunner, str, dict[str, list]]:
    seen: dict[str, list] = {}
    flaky_calls: dict[str, int] = {}

    async def ingest(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        seen.setdefault(name, []).append((request.headers.get("Authorization"), await request.json()))
        kind = behaviour.get(name, "ok")
        if kind == "frozen":
            await asyncio.sleep(3600)
        if kind == "missing":
            return web.json_response({"message": "Not Found"}, status=404)
        if kind == "denied":
            return web.json_response({"message": "Forbidden"}, status=403)
        if kind == "bad":
            return web.json_response({"error": "message is required"}, status=400)
        if kind == "hostile":  # a user controls their lab: a huge reply with control characters
            return web.Response(status=400, text="\x1b[31m" + "\u202e" + "x" * 1_000_000 + "\x00\n")
        if kind == "redirect":
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere")
        if kind == "flaky":
            flaky_calls[name] = flaky_calls.get(name, 0) + 1
            if flaky_calls[name] < 3:
                return web.json_response({"message": "busy"}, status=503)
        return web.json_response({"success": True, "notification_id": f"n-{name}"})

    app = web.Application()
    app.router.add_post("/user/{name}/jupyterlab-notifications-extension/ingest", ingest)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", seen


def targets(base: str, names: list[str]) -> list[Target]:
    return [Target(n, "", f"{base}/user/{n}/jupyterlab-notifications-extension/ingest", f"token-{n}") for n in names]


def test_outcomes_by_kind_and_the_frozen_one_holds_nobody_back() -> None:
    behaviour = {"f": "frozen", "m": "missing", "d": "denied", "b": "bad", "x": "flaky"}
    names = ["a", "b", "c", "d", "f", "m", "x"] + [f"u{i}" for i in range(30)]

    async def main():
        runner, base, seen = await serve(behaviour)
        recorded: dict[str, float] = {}
        t0 = time.monotonic()

        async def on_result(result):
            recorded[result.target.user] = time.monotonic() - t0

        limits = Limits(concurrency=4, attempt_timeout=0.4, deadline=1.5, backoff_base=0.05)
        results = await deliver_all(targets(base, names), PAYLOAD, on_result, limits)
        await runner.cleanup()
        return {r.target.user: r for r in results}, recorded, seen

    results, recorded, seen = asyncio.run(main())
    assert results["a"].outcome == "delivered" and results["a"].http_status == 200
    assert (results["m"].outcome, results["m"].error) == (
        "failed",
        "notifications extension not installed on this server",
    )
    assert (results["d"].outcome, results["d"].error) == ("failed", "authentication failed")
    assert results["b"].outcome == "failed" and "message is required" in results["b"].error
    assert results["x"].outcome == "delivered" and results["x"].attempts == 3  # 503, 503, 200
    assert results["f"].outcome == "timeout" and results["f"].attempts >= 2
    assert "no answer within" in results["f"].error
    # Final answers are not retried.
    assert len(seen["m"]) == 1 and len(seen["d"]) == 1 and len(seen["b"]) == 1
    # Everyone but the frozen one was recorded long before the deadline.
    assert max(t for user, t in recorded.items() if user != "f") < 0.8
    assert 1.2 < recorded["f"] <= 1.7
    # Each lab got its own token, and the payload as given.
    assert seen["a"][0] == ("token token-a", PAYLOAD)


def test_unreachable_server_fails_at_the_deadline_with_the_reason() -> None:
    async def main():
        t = [Target("z", "", "http://127.0.0.1:9/ingest", "t")]
        return await deliver_all(t, PAYLOAD, limits=Limits(attempt_timeout=0.2, deadline=0.6, backoff_base=0.05))

    (result,) = asyncio.run(main())
    assert result.outcome == "failed" and result.error.startswith("cannot connect")
    assert result.attempts >= 2


def test_a_hostile_lab_reply_is_bounded_printable_and_not_followed() -> None:
    async def main():
        runner, base, _ = await serve({"h": "hostile", "r": "redirect"})
        try:
            return await deliver_all(targets(base, ["h", "r"]), PAYLOAD, limits=Limits(deadline=5))
        finally:
            await runner.cleanup()

    hostile, redirected = asyncio.run(main())
    assert hostile.outcome == "failed" and hostile.http_status == 400
    assert len(hostile.error) <= 200 and hostile.error.isprintable()
    assert "\u202e" not in hostile.error and "\x1b" not in hostile.error
    # A redirect is the lab's answer, not somewhere to send the token.
    assert redirected.http_status == 302 and redirected.outcome == "failed"


def test_clean_text_keeps_nothing_invisible() -> None:
    from reconciler.clients.lab import clean_text

    hidden = "a\u2028b\u2029c\u200bd\ufeffe\u061cf\u00adg\U000e0041h\u202ei\x00j\nk"
    cleaned = clean_text(hidden)
    assert cleaned.isprintable() and all(ch not in cleaned for ch in "\u200b\ufeff\u061c\u00ad\U000e0041\u202e")
    assert cleaned.replace(" ", "") == "abcdefghijk"
    assert len(clean_text("x" * 10_000)) == 200
