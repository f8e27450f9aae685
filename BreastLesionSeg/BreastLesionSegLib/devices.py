"""Compute devices the panel offers (auto / CPU / GPU) and the GPU name shown beside them.

The Slicer process does not import torch (inference runs out of process), so the GPU is found with
``nvidia-smi`` when it is on the PATH; the child process still decides with torch ("auto" = CUDA
when torch sees one, else CPU) and reports the device it used in metrics.json.
"""
from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)


def gpu_names(timeout_s: float = 5.0) -> list[str]:
    """Names of the NVIDIA GPUs of this computer ([] when there is none or nvidia-smi is absent)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("nvidia-smi failed: %s", exc)
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def device_description(names: list[str]) -> str:
    """The text shown beside the device selector."""
    if not names:
        return "No NVIDIA GPU found: segmentation runs on the CPU."
    return "GPU: " + "; ".join(f"cuda:{k} {n}" for k, n in enumerate(names))
