"""The inference backends, defined once: names, one-line descriptions, automatic order per device.

Importable without torch (the CLI help, ``InferenceConfig`` validation and the docs read from here).
Measured choice (docs/performance.md): eager PyTorch is the reference and runs everywhere (CUDA with
float16 autocast); OpenVINO is the one CPU runtime kept, because it is the only one that made the whole
``segment`` clearly faster on the Duke exam, above all on a busy machine.
"""
from __future__ import annotations

#: backend name -> one line for the CLI help, logs and docs
BACKEND_DESCRIPTIONS: dict[str, str] = {
    "eager": "eager PyTorch (the reference; float32 on CPU, float16 autocast on CUDA)",
    "openvino": "OpenVINO CPU plugin running the model's verified ONNX export (float32)",
}
#: every backend, in the order the CLI lists them
BACKENDS: tuple[str, ...] = tuple(BACKEND_DESCRIPTIONS)
#: values accepted by ``--backend`` / ``InferenceConfig.backend``
BACKEND_CHOICES: tuple[str, ...] = ("auto",) + BACKENDS
#: automatic order per device type, first that can run wins (eager is always last)
AUTO_ORDER: dict[str, tuple[str, ...]] = {"cpu": ("openvino", "eager"), "cuda": ("eager",)}


def backend_help() -> str:
    """One sentence for ``--backend``: the choices and what ``auto`` does."""
    return ("inference backend: auto (default: OpenVINO on CPU when the model folder has a verified ONNX export "
            "and openvino is installed, else eager PyTorch), " + ", ".join(BACKENDS))


#: name of the thread that prepares the backend in the background (``SegmentationEngine``); the CLI's process
#: entry point leaves without waiting for it
BACKEND_THREAD_NAME = "bls-backend"
