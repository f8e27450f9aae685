"""The module's parameter node, declared with Slicer's typed wrapper (``slicer.parameterNodeWrapper``).

Imported only inside the Slicer application: the ``slicer-core`` wheel used by the tests does not ship
``slicer.parameterNodeWrapper``. The fields have the names of
:class:`~BreastLesionSegLib.settings.SegmentationSettings` (the logic takes its values through
:func:`~BreastLesionSegLib.settings.settings_from`), and the ranges, choices and defaults come from
:mod:`.settings`. Widgets in ``Resources/UI/BreastLesionSeg.ui`` carry a ``SlicerParameterName``
property naming their field, so ``connectGui`` binds them both ways; the node selectors, the
post-contrast list and the model selector are filled by the panel.

Saved with the scene: the model is stored by id, the inputs and results as node references.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from slicer import (
    vtkMRMLPlotChartNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLSequenceNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import Choice, Default, WithinRange, parameterNodeWrapper, parameterPack

from . import settings as S


@parameterPack
class ResultReferences:
    """The nodes of the last result shown in the panel."""

    segmentation: vtkMRMLSegmentationNode
    table: vtkMRMLTableNode
    chart: vtkMRMLPlotChartNode
    probability: vtkMRMLScalarVolumeNode
    heatmap: vtkMRMLScalarVolumeNode


@parameterNodeWrapper
class BreastLesionSegParameterNode:
    """Panel state: inputs, model and options, training folders, result nodes."""

    modality: Annotated[str, Choice(list(S.MODALITIES))] = S.MODALITY_DCE_MRI
    input_mode: Annotated[str, Choice(list(S.INPUT_MODES))] = S.INPUT_VOLUMES
    pre_volume: vtkMRMLScalarVolumeNode
    post_volumes: list[vtkMRMLScalarVolumeNode]
    sequence: vtkMRMLSequenceNode
    image_2d: vtkMRMLScalarVolumeNode  # ultrasound / mammography image (scalar or RGB, one slice)
    model: str = S.DEFAULT_MODEL_ID
    model_defaults_from: str = ""
    ultrasound_model: str = ""  # "" = the command's default model
    mammography_model: str = ""
    device: Annotated[str, Choice(list(S.DEVICES))] = "auto"
    breast_masking: bool = True
    threshold: Annotated[float, WithinRange(*S.THRESHOLD_RANGE)] = 0.5
    min_lesion_volume_mm3: Annotated[float, WithinRange(*S.MIN_LESION_VOLUME_RANGE_MM3)] = 20.0
    save_probability: bool = False
    save_heatmap: bool = False
    user_model_folders: list[str]
    dataset_folder: Annotated[Path, Default(generator=S.default_dataset_folder)]
    training_output_folder: Annotated[Path, Default(generator=S.default_training_output_folder)]
    training_epochs: Annotated[int, WithinRange(*S.TRAINING_EPOCHS_RANGE)] = 20
    fine_tune: bool = True
    corrected_by: str = ""
    result: ResultReferences
