"""Which device an engine runs on: ``cpu`` or ``cuda[:N]``, chosen without importing torch when
the machine has no GPU device node (that import is ~0.8 s of every CLI start, and the
CTranslate2 engine does not need torch at all)."""

from __future__ import annotations

import glob
import os

from ..errors import ConfigError
from ..settings import current

GPU_DEVICE_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/gpus",  # NVIDIA
                    "/dev/dxg",  # WSL2
                    "/dev/kfd")  # AMD ROCm (torch.cuda on ROCm builds)


def gpu_device_present() -> bool:
    """True when the kernel shows a GPU torch could use (then torch is asked whether it works)."""
    return any(os.path.exists(p) for p in GPU_DEVICE_NODES) or bool(glob.glob("/dev/nvhost-*"))  # + Jetson


def pick_device(device: str | None = None) -> str:
    """``device``, else the settings' (MT_DEVICE), else auto (cuda when available, else cpu);
    validated. With no GPU device node, auto is "cpu" without importing torch."""
    device = (device or current().device or "auto").strip().lower()
    if device == "auto" and not gpu_device_present():
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but no CUDA GPU is available")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported (use auto, cpu or cuda[:N])")
    return device
