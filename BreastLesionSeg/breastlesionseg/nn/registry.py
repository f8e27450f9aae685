"""Model folders: save, find, verify and load trained lesion models.

A model folder is ``<model_id>/`` with ``model_card.json`` and the weights file the card names
(``weights.pt``, a plain ``state_dict`` saved with ``torch.save``). Models are found by path or by
name in the model search path, in this order:

1. the folders of the environment variable ``BREASTLESIONSEG_MODELS`` (``os.pathsep``-separated);
2. the user folder ``~/.breastlesionseg/models``;
3. the repository's ``models/`` folder (beside ``BreastLesionSeg/``; the shipped demo model lives there).

Loading verifies the weights' sha256 against the card **before** deserialising anything (for the
shipped models also against the checksum list inside the package, :mod:`.shipped_models`), and
deserialises with ``torch.load(..., weights_only=True)`` (no pickled code is executed). The trust model
is documented in docs/model_trust.md.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, ModelError
from .base import SegmentationNetwork
from .factory import network_config_of
from .model_card import ModelCard
from .model_paths import (CARD_FILE, MODELS_ENV, REPO_MODELS_DIR, model_search_path, resolve_model, sha256_file,
                          user_models_dir)

log = logging.getLogger(__name__)



def list_models() -> list[ModelCard]:
    """Cards of every valid model in the search path (first occurrence of each id wins).

    Invalid folders are skipped with a warning, so one broken model does not hide the others; 2D model
    folders (``"kind": "lesion2d"``) are not MRI models and are left out quietly.
    """
    from ..imaging2d.model_card2d import CARD_KIND as CARD_KIND_2D, card_kind

    cards: dict[str, ModelCard] = {}
    for root in model_search_path():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()):
            if card_kind(folder) == CARD_KIND_2D:
                continue  # a 2D ultrasound / mammography model: listed by imaging2d.model_card2d.list_models_2d
            try:
                card = ModelCard.read(folder)
            except ModelError as exc:
                log.warning("skipping model folder %s: %s", folder, exc)
                continue
            cards.setdefault(card.model_id, card)
    return list(cards.values())


def _check_state_dict(module: nn.Module, state: dict[str, Any], source: str) -> None:
    """Raise ModelError naming missing / unexpected keys and shape mismatches."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        def short(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {short(shapes)}")
        raise ModelError(f"weights in {source} do not match the architecture in the model card: " + "; ".join(parts))


def unwrap_network(module: nn.Module) -> nn.Module:
    """The bare network inside DistributedDataParallel / DataParallel (``.module``) or torch.compile (``._orig_mod``)."""
    seen = 0
    while seen < 4:
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            break
        module, seen = inner, seen + 1
    return module


def check_shipped_weights(model_id: str, weights_sha256: str, weights: Path, refuse: bool = True,
                          key: str = "weights_sha256", index: int | None = None) -> None:
    """Weights that claim a shipped model's id must be the ones the package's checksum list names.

    Args:
        model_id, weights_sha256, weights: the card's id, the weights' actual sha256 and their path.
        refuse: raise (the model was asked for by id: the user expects the shipped model); else only warn
            (a folder given by path, e.g. a re-training of the demo model before its checksums are updated).
        key: which of the model's checksums (``SHIPPED_MODELS`` entry) the file must match, e.g.
            ``"crop_classifier_sha256"`` for an ultrasound model's crop classifiers.
        index: for a checksum list (one per file, e.g. the members of a crop-classifier ensemble), the file's
            position in it (a single checksum is position 0; a position past the list's end matches nothing).

    Raises:
        ModelError: ``refuse`` and the checksum is not the packaged one.
    """
    from .shipped_models import SHIPPED_MODELS

    expected = SHIPPED_MODELS.get(model_id, {}).get(key)
    if expected is not None and index is not None:
        listed = expected if isinstance(expected, list) else [expected]
        expected = listed[index] if index < len(listed) else "(no such file in the list)"
    if expected is None or weights_sha256 == expected:
        return
    message = (f"'{weights}' claims to be the shipped model '{model_id}' but its sha256 {weights_sha256} is not the "
               f"one this package ships ({expected}): the weights and the model card were changed together")
    if refuse:
        raise ModelError(message + "; give a re-trained model its own model_id (docs/model_trust.md)")
    log.warning("%s (loaded because it was given by path)", message)


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[SegmentationNetwork, ModelCard]:
    """Load a model folder: verify, rebuild the network from the card, load the weights.

    Args:
        name_or_path: a model folder, its ``model_card.json``, or a model id in the search path.
        device: torch device for the module.

    Returns:
        ``(module in eval mode on device, card)``.

    Raises:
        ModelError: missing folder/card/weights, invalid card, checksum mismatch (truncated,
            corrupted or swapped weights file), unreadable weights, or weights not matching the architecture.
    """
    folder = resolve_model(name_or_path)
    card = ModelCard.read(folder)
    weights = folder / card.weights_file
    if not weights.is_file():
        raise ModelError(f"weights file '{weights}' named by the model card of '{card.model_id}' is missing")
    if not card.weights_sha256:
        raise ModelError(f"model card '{folder / CARD_FILE}' has no weights_sha256; refusing unverified weights")
    actual = sha256_file(weights)
    if actual != card.weights_sha256:
        raise ModelError(
            f"checksum mismatch for '{weights}': sha256 {actual} but the model card says {card.weights_sha256} "
            f"(the file is truncated, corrupted or not the one this card describes)"
        )
    by_id = not Path(str(name_or_path)).expanduser().exists()
    check_shipped_weights(card.model_id, actual, weights, refuse=by_id)
    module = card.model_config().build()
    from ..training.checkpoint import safe_torch_load

    state = safe_torch_load(weights, "weights", ModelError)  # never relays torch's "weights_only=False" advice
    if not isinstance(state, dict):
        raise ModelError(f"weights '{weights}' do not hold a state_dict (got {type(state).__name__})")
    _check_state_dict(module, state, f"'{weights}'")
    module.load_state_dict(state, strict=True)
    try:
        module = module.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise InputError(f"cannot move model '{card.model_id}' to device {device!r}: {exc}") from exc
    module.eval()
    log.debug("loaded model %s from %s (sha256 %s)", card.model_id, folder, actual)
    return module, card


def save_model(module: nn.Module, card: ModelCard, folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``weights.pt`` (state_dict) and ``model_card.json`` (with the weights' sha256) into ``folder``.

    The folder is assembled in a temporary folder beside it and renamed into place, so a crash never
    leaves a half-written model. The card's ``arch`` / ``config`` must describe ``module``; its
    ``weights_sha256`` is filled in. ``card`` is updated in place and also written.

    Args:
        module: an :class:`MM3DUNet` or :class:`UNet3D` (any device; saved from CPU copies), also when
            wrapped in DistributedDataParallel / DataParallel or ``torch.compile`` (unwrapped, so the keys
            carry no ``module.`` / ``_orig_mod.`` prefix).
        card: the model card.
        folder: the model folder to create (conventionally named after ``card.model_id``).
        overwrite: replace an existing folder.

    Returns:
        The model folder.

    Raises:
        InputError: ``folder`` exists and ``overwrite`` is false, or the card does not describe ``module``.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise InputError(f"refusing to overwrite existing model folder '{folder}' (use --force / overwrite=True)")
    module = unwrap_network(module)
    model_config = network_config_of(module)
    if model_config.arch != card.arch or model_config.network.to_dict() != card.model_config().network.to_dict():
        raise InputError(
            f"model card '{card.model_id}' describes {card.arch} {card.config} but the module is "
            f"{model_config.arch} {model_config.network.to_dict()}"
        )
    card.config = model_config.network.to_dict()
    state = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        torch.save(state, tmp / card.weights_file)
        card.weights_sha256 = sha256_file(tmp / card.weights_file)
        card.validate()
        (tmp / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            old.rmdir()
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("saved model %s to %s (sha256 %s)", card.model_id, folder, card.weights_sha256)
    return folder
