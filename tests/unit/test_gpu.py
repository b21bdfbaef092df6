"""The GPU decision (pure) and the probe's bounds (fake engines)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub_config.gpu import decide, detect
from vocabulary.settings import GpuMode

NO_GPU = {"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}}


def test_off_and_on_need_no_engine() -> None:
    assert decide(GpuMode.OFF, None).enabled is False
    assert decide(GpuMode.ON, None).enabled is True
    assert "ENABLE_GPU_SUPPORT=1" in decide(GpuMode.ON, None).reason


def test_auto_with_nvidia_runtime() -> None:
    d = decide(GpuMode.AUTO, {"Runtimes": {"runc": {}, "nvidia": {}}})
    assert d.enabled and "nvidia runtime" in d.reason


def test_auto_with_cdi_device() -> None:
    d = decide(
        GpuMode.AUTO, {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}
    )
    assert d.enabled and "nvidia.com/gpu=all" in d.reason


def test_auto_without_gpu_says_why() -> None:
    d = decide(GpuMode.AUTO, NO_GPU)
    assert not d.enabled
    assert str(d) == (
        "GPU support: off (auto-detect: the engine has no nvidia runtime and no CDI GPU "
        "(runtimes: io.containerd.runc.v2, runc))"
    )


def test_probe_failure_means_off_with_the_error() -> None:
    def broken() -> dict:
        raise ConnectionError("engine unreachable")

    d = asyncio.run(detect(GpuMode.AUTO, broken, timeout=1))
    assert not d.enabled and "ConnectionError: engine unreachable" in d.reason


def test_probe_is_bounded_and_does_not_block_the_loop() -> None:
    def hanging() -> dict:
        time.sleep(1.5)
        return {"Runtimes": {"nvidia": {}}}

    async def main() -> tuple[object, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        decision = await detect(GpuMode.AUTO, hanging, timeout=0.3)
        elapsed = time.perf_counter() - t0
        task.cancel()
        assert elapsed < 1.0
        return decision, ticks

    decision, ticks = asyncio.run(main())
    assert not decision.enabled and "no answer within 0.3 s" in decision.reason
    assert ticks >= 10  # the loop kept running while the probe hung


@pytest.mark.parametrize("mode", [GpuMode.OFF, GpuMode.ON])
def test_fixed_modes_never_call_the_engine(mode: GpuMode) -> None:
    def must_not_run() -> dict:
        raise AssertionError("probed")

    assert asyncio.run(detect(mode, must_not_run, timeout=1)).enabled is (mode == GpuMode.ON)
