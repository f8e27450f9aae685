"""Where model folders are found, and how a model is named: torch-free (cards can be listed without torch).

Models are found by path or by name in the model search path, in this order:

1. the folders of the environment variable ``BREASTLESIONSEG_MODELS`` (``os.pathsep``-separated);
2. the user folder ``~/.breastlesionseg/models``;
3. the repository's ``models/`` folder (beside ``BreastLesionSeg/``; the shipped models live there).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import ModelError

#: the model card's file name in every model folder (3D and 2D models)
CARD_FILE = "model_card.json"
#: environment variable with extra model folders (os.pathsep-separated)
MODELS_ENV = "BREASTLESIONSEG_MODELS"
#: the repository's models/ folder (exists in a source checkout / editable install)
REPO_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def user_models_dir() -> Path:
    """``~/.breastlesionseg/models``."""
    return Path.home() / ".breastlesionseg" / "models"


def model_search_path() -> list[Path]:
    """Folders searched for models by name, in priority order (existing or not)."""
    paths = [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p.strip()]
    paths += [user_models_dir(), REPO_MODELS_DIR]
    return paths


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The model folder for a path (folder or its ``model_card.json``) or a model id in the search path.

    Raises:
        ModelError: nothing found (the message lists where it looked).
    """
    text = str(name_or_path)
    if not text.strip():
        raise ModelError("empty model name or path")
    path = Path(text).expanduser()
    if path.is_file() and path.name == CARD_FILE:
        return path.parent
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelError(f"model folder '{path}' has no {CARD_FILE}")
        return path
    looks_like_path = os.sep in text or (os.altsep is not None and os.altsep in text) or text.startswith(".")
    if not looks_like_path:
        for root in model_search_path():
            candidate = root / text
            if (candidate / CARD_FILE).is_file():
                return candidate
    searched = ", ".join(str(p) for p in model_search_path())
    raise ModelError(
        f"model '{text}' not found: not a model folder, and no folder of that name with a {CARD_FILE} in the "
        f"model search path ({searched}; add folders with ${MODELS_ENV})"
    )
