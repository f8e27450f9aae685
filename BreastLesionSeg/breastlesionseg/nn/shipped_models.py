"""Checksums of the models shipped with the repository, kept in the package (not beside the weights).

A model card records the sha256 of its own weights, which detects a truncated, corrupted or swapped file
but not a deliberate edit of both the weights and the card. For the shipped models the package itself
holds the expected checksums: :func:`~breastlesionseg.nn.registry.load_model` refuses a folder whose card
claims a shipped model id but whose weights differ, wherever that folder lives (docs/model_trust.md).
Re-training a shipped model means updating this table in the same commit (a test compares it with
``models/``).
"""
from __future__ import annotations

#: model id -> {"weights_sha256": ..., "onnx_sha256": ... (3D models with an ONNX export), "crop_classifier_sha256":
#: [...] (ultrasound models with crop classifiers: one per member, in the card's order)} of the copy in the
#: repository's models/ folder
SHIPPED_MODELS: dict[str, dict[str, str | list[str]]] = {
    "mm3dunet-phantom-demo": {
        "weights_sha256": "2fbd50d3bc661db7c58402e97ea7b29c0532d6e2fc7eac5d9256d0c1fe91065c",
        "onnx_sha256": "e08fd70cc1675c5a228e8d2b5e84b47d6ed5c6339bb32fac5e3b6b9e59608b49",
    },
    "us-attunet-busbra": {
        "weights_sha256": "3cb6f8cbd76a7dbdf4fb0a0f740e529e10f3104f4750b24e3e03649b218cbde2",
        "crop_classifier_sha256": ["9c8fd6d8358fd6551f64eb1c0b6662b5a04e6af55249c8e7cfab729975f3d70c",
                                   "32863cc77da34e98ea79fd85dc1f5e101cc3a43d32ef581b01828411bed09d3b"],
    },
    "hires-unet-cddcesm-demo": {
        "weights_sha256": "6c55f9e5887e989cd4a57158a72ff3cef889981159465dc02c13d447d59e3f8b",
    },
}
