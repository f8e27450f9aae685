"""The module's parameter node: a typed schema saved in (and restored from) the MRML scene.

The panel state lives in a ``vtkMRMLScriptedModuleNode`` singleton (as
``ScriptedLoadableModuleLogic.getParameterNode()`` creates it), so it is saved with the scene
(.mrml / .mrb) and restored when the scene is loaded. Values are the typed fields of
:class:`SegmentationSettings`; node references (inputs and result nodes) are MRML node references,
so they survive node-id renaming when scenes are imported.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from breastlesionseg.errors import InputError

log = logging.getLogger(__name__)

MODULE_NAME = "BreastLesionSeg"

# node reference roles
ROLE_PRE = "PreContrastVolume"
ROLE_POST = "PostContrastVolume"  # multi-valued, in time order
ROLE_SEQUENCE = "DCESequence"
ROLE_SEGMENTATION = "OutputSegmentation"
ROLE_TABLE = "OutputTable"
ROLE_CHART = "KineticChart"
ROLE_CURVE_TABLE = "KineticCurveTable"
ROLE_PROBABILITY = "ProbabilityVolume"
ROLE_HEATMAP = "HeatmapVolume"
ALL_ROLES = (ROLE_PRE, ROLE_POST, ROLE_SEQUENCE, ROLE_SEGMENTATION, ROLE_TABLE, ROLE_CHART, ROLE_CURVE_TABLE,
             ROLE_PROBABILITY, ROLE_HEATMAP)

DEVICES = ("auto", "cpu", "cuda")
INPUT_MODES = ("volumes", "sequence")


@dataclass
class SegmentationSettings:
    """Typed panel values (saved as strings in the parameter node).

    Attributes:
        input_mode: "volumes" (pre + post volumes) or "sequence" (a 4D DCE sequence).
        model: model id (folder name in a model directory) or a model folder path.
        device: "auto", "cpu" or "cuda" (or "cuda:N").
        breast_masking: restrict lesions to the breast region.
        threshold: probability threshold of the lesion map (0..1).
        min_lesion_volume_mm3: components smaller than this are removed.
        save_probability: also load the lesion probability map.
        save_heatmap: also load the Grad-CAM heat map.
        user_model_dirs: extra folders searched for models (os.pathsep-separated when stored).
        dataset_dir: training dataset folder ("Add to training set", "Train").
        training_output_dir: where "Train / fine-tune" writes new models (default ~/.breastlesionseg/models).
        training_epochs: epochs of a training run.
        fine_tune: start training from the selected model.
        corrected_by: name recorded in the training manifest.
    """

    input_mode: str = "volumes"
    model: str = "mm3dunet-phantom-demo"
    device: str = "auto"
    breast_masking: bool = True
    threshold: float = 0.5
    min_lesion_volume_mm3: float = 20.0
    save_probability: bool = False
    save_heatmap: bool = False
    user_model_dirs: list[str] = field(default_factory=list)
    dataset_dir: str = ""
    training_output_dir: str = ""
    training_epochs: int = 20
    fine_tune: bool = True
    corrected_by: str = ""

    def validate(self) -> "SegmentationSettings":
        """Check ranges; raises InputError naming the field and value."""
        if self.input_mode not in INPUT_MODES:
            raise InputError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1 (exclusive), got {self.threshold}")
        if self.min_lesion_volume_mm3 < 0:
            raise InputError(f"min_lesion_volume_mm3 must be >= 0, got {self.min_lesion_volume_mm3}")
        if self.training_epochs < 1:
            raise InputError(f"training_epochs must be >= 1, got {self.training_epochs}")
        if not self.model:
            raise InputError("model must name an installed model or a model folder")
        return self


def _param_name(field_name: str) -> str:
    return "".join(part.capitalize() for part in field_name.split("_"))


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        import os

        return os.pathsep.join(str(v) for v in value)
    return str(value)


def _decode(text: str, kind: type, name: str) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is list:
            import os

            return [p for p in text.split(os.pathsep) if p]
        return text
    except ValueError:
        raise InputError(f"parameter node value {name}={text!r} is not a valid {kind.__name__}") from None


_KINDS = {"bool": bool, "int": int, "float": float, "str": str, "list[str]": list}


def get_parameter_node(scene: Any, module_name: str = MODULE_NAME) -> Any:
    """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``scene`` (created when missing)."""
    node = scene.GetSingletonNode(module_name, "vtkMRMLScriptedModuleNode")
    if node is not None:
        return node
    node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
    node.UnRegister(None)  # CreateNodeByClass returns a new reference
    node.SetSingletonTag(module_name)
    node.SetAttribute("ModuleName", module_name)
    node.SetName(scene.GenerateUniqueName(module_name))
    return scene.AddNode(node)


def is_fresh(pnode: Any) -> bool:
    """True when no settings were ever saved in ``pnode`` (a new scene or a new parameter node)."""
    return pnode.GetParameter(_param_name("model")) == ""


def save_settings(pnode: Any, settings: SegmentationSettings) -> None:
    """Write every field of ``settings`` into the parameter node (one Modified event)."""
    settings.validate()
    was = pnode.StartModify()
    try:
        for f in dataclasses.fields(settings):
            pnode.SetParameter(_param_name(f.name), _encode(getattr(settings, f.name)))
    finally:
        pnode.EndModify(was)


def load_settings(pnode: Any) -> SegmentationSettings:
    """Read the settings back; missing parameters keep their defaults.

    Raises:
        InputError: a stored value cannot be parsed or is out of range (names it).
    """
    values = {}
    for f in dataclasses.fields(SegmentationSettings):
        text = pnode.GetParameter(_param_name(f.name))
        if text == "":
            continue
        values[f.name] = _decode(text, _KINDS[str(f.type)], _param_name(f.name))
    return SegmentationSettings(**values).validate()


def set_node_references(pnode: Any, role: str, nodes: Sequence[Any]) -> None:
    """Replace the references of ``role`` with ``nodes`` (in order; None entries are skipped)."""
    if role not in ALL_ROLES:
        raise ValueError(f"unknown reference role {role!r}")
    pnode.RemoveNodeReferenceIDs(role)
    for node in nodes:
        if node is not None:
            pnode.AddNodeReferenceID(role, node.GetID())


def set_node_reference(pnode: Any, role: str, node: Any | None) -> None:
    """Set (or clear with None) the single reference of ``role``."""
    set_node_references(pnode, role, [node] if node is not None else [])


def node_references(pnode: Any, role: str) -> list[Any]:
    """The referenced nodes of ``role`` in order (missing nodes skipped)."""
    out = []
    for i in range(pnode.GetNumberOfNodeReferences(role)):
        node = pnode.GetNthNodeReference(role, i)
        if node is not None:
            out.append(node)
    return out


def node_reference(pnode: Any, role: str) -> Any | None:
    """The first referenced node of ``role`` or None."""
    refs = node_references(pnode, role)
    return refs[0] if refs else None
