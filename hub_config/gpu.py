"""NVIDIA GPU support: the decision (pure) and the engine probe (bounded, off the loop).

The probe asks the Docker engine, not the hub's own host, because the hub may itself run
in a container: an engine that can hand GPUs to containers reports the `nvidia` runtime
(nvidia-container-toolkit) or discovered CDI GPU devices in `docker info`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from traitlets.log import get_logger

from vocabulary.settings import GpuMode


@dataclass(frozen=True)
class GpuDecision:
    enabled: bool
    reason: str

    def __str__(self) -> str:
        return f"GPU support: {'on' if self.enabled else 'off'} ({self.reason})"


def engine_gpu_evidence(info: dict[str, Any]) -> str | None:
    """What in `docker info` shows GPUs can be given to containers, or None."""
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes:
        return "the engine has the nvidia runtime"
    for device in info.get("DiscoveredDevices") or []:
        if "nvidia.com/gpu" in str(device.get("ID", "")):
            return f"the engine discovered CDI device {device['ID']}"
    return None


def decide(mode: GpuMode, info: dict[str, Any] | None, probe_error: str | None = None) -> GpuDecision:
    """Decide from the setting and what the engine reported (None: the probe failed)."""
    if mode == GpuMode.OFF:
        return GpuDecision(False, "ENABLE_GPU_SUPPORT=0")
    if mode == GpuMode.ON:
        return GpuDecision(True, "ENABLE_GPU_SUPPORT=1")
    if info is None:
        return GpuDecision(False, f"auto-detect: could not ask the engine: {probe_error or 'no answer'}")
    evidence = engine_gpu_evidence(info)
    if evidence:
        return GpuDecision(True, f"auto-detect: {evidence}")
    runtimes = ", ".join(sorted(info.get("Runtimes") or {})) or "none"
    return GpuDecision(False, f"auto-detect: the engine has no nvidia runtime and no CDI GPU (runtimes: {runtimes})")


async def detect(mode: GpuMode, engine_info: Callable[[], dict[str, Any]], timeout: float) -> GpuDecision:
    """Run the (blocking) engine probe in a thread, bounded by `timeout`; log one line."""
    info: dict[str, Any] | None = None
    error: str | None = None
    if mode == GpuMode.AUTO:
        try:
            info = await asyncio.wait_for(asyncio.to_thread(engine_info), timeout)
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except Exception as e:  # any engine failure means "no GPU", never a failed start
            error = f"{type(e).__name__}: {e}"
    decision = decide(mode, info, error)
    get_logger().info("%s", decision)  # the hub's own log, one line
    return decision


_decision: asyncio.Task[GpuDecision] | None = None


def decision(mode: GpuMode, engine_info: Callable[[], dict[str, Any]], timeout: float) -> asyncio.Task[GpuDecision]:
    """The hub's one GPU decision: started on first call, shared by every spawn after."""
    global _decision
    if _decision is None:
        _decision = asyncio.ensure_future(detect(mode, engine_info, timeout))
    return _decision
