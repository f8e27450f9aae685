"""A model card's ``limitations``: measured known limitations, one text each, repeated with every result.

Shared by the 3D card (:class:`breastlesionseg.nn.model_card.ModelCard`) and the 2D card
(:class:`breastlesionseg.imaging2d.model_card2d.ModelCard2D`) so both check them, and word them for the user, alike.
"""
from __future__ import annotations

from typing import Any, Sequence


def is_limitation_list(value: Any) -> bool:
    """True for a list of non-empty texts (the only valid ``limitations`` value)."""
    return isinstance(value, list) and all(isinstance(text, str) and text.strip() for text in value)


def limitation_notes(model_id: str, limitations: Sequence[str]) -> list[str]:
    """One note per limitation, as every result and run log shows it: ``known limitation of model 'ID': TEXT``."""
    return [f"known limitation of model '{model_id}': {text}" for text in limitations]


__all__ = ["is_limitation_list", "limitation_notes"]
