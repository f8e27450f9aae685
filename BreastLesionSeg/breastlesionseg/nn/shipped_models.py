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
        "weights_sha256": "d478ad34712bddec455ace32f22e3c6fcbdd145c63f98d4eea2798c1a355644c",
        "onnx_sha256": "58481ccec828e8f453755542b0909783c05913e2db2a3cb225ee06889771ddf0",
    },
    "us-attunet-busbra": {
        "weights_sha256": "ae2a835dc21dde63337d55d41ef1d61acc984df71844292e5d3b50d16d23e167",
        "crop_classifier_sha256": ["5eab65259c75b2bd571195d6e85934ac9a12982ac8ef4b55fbeaa7d7ba834d44",
                                   "9ce617aa7daa750dbc043b7f7320fbfdea94e7703b0dc5b854baa9ac8ee3b325"],
    },
    "hires-unet-cddcesm-demo": {
        "weights_sha256": "6c55f9e5887e989cd4a57158a72ff3cef889981159465dc02c13d447d59e3f8b",
    },
}
