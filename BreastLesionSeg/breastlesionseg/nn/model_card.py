"""The model card: everything needed to use a trained lesion model correctly (``model_card.json``).

A model folder holds ``model_card.json`` and the weights file it names (``weights.pt``, a plain
``state_dict``) whose sha256 it records. The card says how to rebuild the network (``arch`` +
``config``), how to prepare its input (channels by name, normalisation, spacing, patch size), how to
turn outputs into masks (threshold), what it was trained and validated on, and whether it is a
demonstration model. Every model is for research use only (not a medical device).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError
from .channels import NORMALIZATIONS
from .factory import ModelConfig
from .limitations import is_limitation_list
from .model_paths import CARD_FILE

#: version of the card format written by this code
CARD_FORMAT_VERSION = 1
#: default weights file name inside a model folder
WEIGHTS_FILE = "weights.pt"
RESEARCH_USE_TEXT = (
    "For research use only. Not a medical device; not for diagnosis or treatment decisions. "
    "Every result must be reviewed and corrected by a qualified reader."
)
NORMALIZATION_REGIONS: tuple[str, ...] = ("breast_mask", "volume")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHANNEL_RE = re.compile(r"^(pre|post[1-9][0-9]*|sub[1-9][0-9]*)$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def _is_spacing(value: Any) -> bool:
    """True for 3 positive voxel sizes in mm (numbers below 100, no booleans)."""
    return len(value) == 3 and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s < 100 for s in value)


@dataclass
class ModelCard:
    """Description of a trained lesion model (serialised as ``model_card.json``).

    Attributes:
        model_id: folder-safe identifier, e.g. ``mm3dunet-phantom-demo``.
        arch: ``mm3dunet`` or ``unet3d``.
        config: the network config fields (see :mod:`breastlesionseg.nn.config`).
        input_channels: channel names in order (``pre``, ``postK``, ``subK`` = postK - pre); their
            number must equal ``config["in_channels"]``.
        normalization: per-channel intensity normalisation (``zscore``, ``robust`` or ``none``; see nn/channels).
        normalization_region: where the normalisation statistics are taken (``breast_mask`` or ``volume``).
        target_spacing_mm: voxel spacing (x, y, z) in mm the network was trained at.
        inference_spacing_mm: voxel spacing (x, y, z) in mm of the grid the network runs on at inference when it
            differs from ``target_spacing_mm`` (a finer grid shows a small lesion over more voxels, as the network
            learned larger ones); ``None`` = ``target_spacing_mm``. Chosen on validation data
            (``scripts/calibrate_inference.py --spacing-scales``).
        patch_size: training patch (D, H, W) in voxels; the default sliding-window size.
        inference_window: sliding-window size (D, H, W) in voxels used at inference when it differs
            from ``patch_size`` (a fully convolutional network can run on larger windows: fewer windows,
            less per-window overhead); ``None`` = ``patch_size``. Chosen on validation data.
        overlap: recommended sliding-window overlap fraction in [0, 1).
        threshold: probability threshold (on sigmoid of the logits) for the lesion mask.
        min_lesion_volume_mm3: default minimum lesion volume (mm3) kept by post-processing.
        label_names: name of each output channel.
        lesion_confidence: the per-lesion confidence model fitted on validation data
            (``breastlesionseg.inference.lesion_confidence.LesionConfidenceModel.to_dict()``; validated
            when the engine loads it); empty = every component above the threshold is a lesion.
        training_data: what the model was trained on (free text).
        limitations: known limitations, measured (one sentence each, with its figures and where they come from):
            where the model is known to do worse. Shown with every result (``segment``'s notes, ``metrics.json``)
            and in the Slicer panel's model summary.
        validation_metrics: e.g. ``{"dice": 0.83, "iou": 0.71, "n_cases": 20}``.
        weights_file: weights file name in the folder.
        weights_sha256: hex sha256 of the weights file (filled in by ``save_model``).
        onnx_export: the verified ONNX export beside the weights for the OpenVINO backend, written by
            ``breastlesionseg export MODEL --format onnx --into-model-dir``: ``file``, ``sha256``,
            ``weights_sha256`` (the weights it was exported from), the verification against eager PyTorch
            and versions; empty when there is none (inference then runs in eager PyTorch).
        licence: licence of the weights.
        intended_use: what the model may be used for.
        demo: true for demonstration models (e.g. trained on phantoms only).
        research_use_only: always true for this project; ``research_use_text`` says what it means.
        created: ISO-8601 creation date/time (UTC).
        training_command: the command that reproduces the training.
        description: free text.
        format_version: card format version.
        extra: unknown fields of a newer card, kept so they survive a round trip.
    """

    model_id: str
    arch: str
    config: dict[str, Any]
    input_channels: list[str]
    normalization: str = "zscore"
    normalization_region: str = "breast_mask"
    target_spacing_mm: tuple[float, float, float] = (0.7, 0.7, 1.5)
    inference_spacing_mm: tuple[float, float, float] | None = None
    patch_size: tuple[int, int, int] = (32, 96, 96)
    inference_window: tuple[int, int, int] | None = None
    overlap: float = 0.25
    threshold: float = 0.5
    min_lesion_volume_mm3: float = 10.0
    lesion_confidence: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=lambda: ["lesion"])
    training_data: str = ""
    limitations: list[str] = field(default_factory=list)
    validation_metrics: dict[str, Any] = field(default_factory=dict)
    weights_file: str = WEIGHTS_FILE
    weights_sha256: str = ""
    onnx_export: dict[str, Any] = field(default_factory=dict)
    licence: str = "Apache-2.0"
    intended_use: str = "Research on breast-lesion segmentation in breast DCE-MRI."
    demo: bool = False
    research_use_only: bool = True
    research_use_text: str = RESEARCH_USE_TEXT
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    training_command: str = ""
    description: str = ""
    format_version: int = CARD_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target_spacing_mm = tuple(self.target_spacing_mm)  # type: ignore[assignment]
        if self.inference_spacing_mm is not None:
            self.inference_spacing_mm = tuple(self.inference_spacing_mm)  # type: ignore[assignment]
        self.patch_size = tuple(self.patch_size)  # type: ignore[assignment]
        if self.inference_window is not None:
            self.inference_window = tuple(self.inference_window)  # type: ignore[assignment]
        self.input_channels = list(self.input_channels)
        self.label_names = list(self.label_names)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raises :class:`InputError` naming the field and its value."""
        if not isinstance(self.model_id, str) or not _ID_RE.match(self.model_id):
            raise InputError(
                f"model card field 'model_id' must be 1-128 characters of letters, digits, '.', '_', '-'; got {self.model_id!r}"
            )
        model_config = self.model_config()  # validates arch + config
        if not self.input_channels or not all(isinstance(c, str) and _CHANNEL_RE.match(c) for c in self.input_channels):
            raise InputError(
                f"model card field 'input_channels' must be names like 'pre', 'post1', 'sub1'; got {self.input_channels!r}"
            )
        if len(self.input_channels) != model_config.network.in_channels:
            raise InputError(
                f"model card field 'input_channels' has {len(self.input_channels)} names {self.input_channels} but the "
                f"network config has in_channels={model_config.network.in_channels}"
            )
        if len(self.label_names) != model_config.network.out_channels:
            raise InputError(
                f"model card field 'label_names' has {len(self.label_names)} names but the network has "
                f"out_channels={model_config.network.out_channels}"
            )
        if self.normalization not in NORMALIZATIONS:
            raise InputError(f"model card field 'normalization' must be one of {list(NORMALIZATIONS)}; got {self.normalization!r}")
        if self.normalization_region not in NORMALIZATION_REGIONS:
            raise InputError(
                f"model card field 'normalization_region' must be one of {list(NORMALIZATION_REGIONS)}; "
                f"got {self.normalization_region!r}"
            )
        if not _is_spacing(self.target_spacing_mm):
            raise InputError(f"model card field 'target_spacing_mm' must be 3 positive numbers (x, y, z) in mm; got {self.target_spacing_mm!r}")
        if self.inference_spacing_mm is not None and not _is_spacing(self.inference_spacing_mm):
            raise InputError("model card field 'inference_spacing_mm' must be null or 3 positive numbers (x, y, z) in mm; "
                             f"got {self.inference_spacing_mm!r}")
        if len(self.patch_size) != 3 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in self.patch_size
        ):
            raise InputError(f"model card field 'patch_size' must be 3 positive integers (D, H, W); got {self.patch_size!r}")
        if self.inference_window is not None and (len(self.inference_window) != 3 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in self.inference_window
        )):
            raise InputError(
                f"model card field 'inference_window' must be null or 3 positive integers (D, H, W); "
                f"got {self.inference_window!r}"
            )
        if not isinstance(self.overlap, (int, float)) or not 0.0 <= float(self.overlap) < 1.0:
            raise InputError(f"model card field 'overlap' must be in [0, 1); got {self.overlap!r}")
        if (not isinstance(self.min_lesion_volume_mm3, (int, float)) or isinstance(self.min_lesion_volume_mm3, bool)
                or not 0.0 <= float(self.min_lesion_volume_mm3) < 1e9):
            raise InputError(
                f"model card field 'min_lesion_volume_mm3' must be a volume >= 0 mm3; got {self.min_lesion_volume_mm3!r}"
            )
        if not isinstance(self.threshold, (int, float)) or not 0.0 < float(self.threshold) < 1.0:
            raise InputError(f"model card field 'threshold' must be in (0, 1); got {self.threshold!r}")
        if not isinstance(self.weights_file, str) or not self.weights_file or Path(self.weights_file).name != self.weights_file:
            raise InputError(f"model card field 'weights_file' must be a plain file name; got {self.weights_file!r}")
        if self.weights_sha256 and not _SHA_RE.match(str(self.weights_sha256)):
            raise InputError(f"model card field 'weights_sha256' must be 64 lowercase hex digits; got {self.weights_sha256!r}")
        self._validate_onnx_export()
        if not isinstance(self.demo, bool):
            raise InputError(f"model card field 'demo' must be true or false; got {self.demo!r}")
        if self.research_use_only is not True:
            raise InputError("model card field 'research_use_only' must be true: no model of this project is a medical device")
        if not is_limitation_list(self.limitations):
            raise InputError(f"model card field 'limitations' must be a list of non-empty texts; "
                             f"got {self.limitations!r}")
        if not isinstance(self.validation_metrics, dict):
            raise InputError(f"model card field 'validation_metrics' must be an object; got {self.validation_metrics!r}")

    def _validate_onnx_export(self) -> None:
        record = self.onnx_export
        if not isinstance(record, dict):
            raise InputError(f"model card field 'onnx_export' must be an object; got {record!r}")
        if not record:
            return
        name = record.get("file")
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise InputError(f"model card field 'onnx_export.file' must be a plain file name; got {name!r}")
        for key in ("sha256", "weights_sha256"):
            if not _SHA_RE.match(str(record.get(key, ""))):
                raise InputError(f"model card field 'onnx_export.{key}' must be 64 lowercase hex digits; "
                                 f"got {record.get(key)!r}")

    def run_spacing_mm(self) -> tuple[float, float, float]:
        """Spacing (x, y, z) in mm of the grid the network runs on at inference: ``inference_spacing_mm`` or, when
        that is unset, ``target_spacing_mm``."""
        spacing = self.inference_spacing_mm if self.inference_spacing_mm is not None else self.target_spacing_mm
        return tuple(float(s) for s in spacing)  # type: ignore[return-value]

    # ------------------------------------------------------------------ conversions
    def model_config(self) -> ModelConfig:
        """The validated architecture + network config."""
        return ModelConfig.from_dict(self.arch, self.config)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``extra`` fields are merged back at the top level)."""
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        data["target_spacing_mm"] = list(self.target_spacing_mm)
        data["patch_size"] = list(self.patch_size)
        if self.inference_window is not None:
            data["inference_window"] = list(self.inference_window)
        if self.inference_spacing_mm is not None:
            data["inference_spacing_mm"] = list(self.inference_spacing_mm)
        data.update({k: v for k, v in extra.items() if k not in data})
        return data

    def to_json(self) -> str:
        """Pretty JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model card") -> "ModelCard":
        """Build and validate a card from a dictionary.

        Raises:
            ModelError: missing required fields or invalid values (naming ``source`` and the field).
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object; got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelError(f"{source}: missing required field(s) {missing}")
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        try:
            return cls(**known, extra=extra)
        except (InputError, TypeError) as exc:
            raise ModelError(f"{source}: {exc}") from exc

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        """Read ``model_card.json`` (or the card inside a model folder).

        Raises:
            ModelError: the file is missing, not valid JSON, or not a valid card.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILE
        if not path.is_file():
            raise ModelError(f"model card not found: '{path}'")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"model card '{path}' is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source=f"model card '{path}'")

    def summary(self) -> str:
        """One line for model choosers: id, architecture, channels, demo flag."""
        flag = " [DEMO]" if self.demo else ""
        return f"{self.model_id}{flag}: {self.arch} t={self.config.get('expansion', '-')} channels={','.join(self.input_channels)}"
