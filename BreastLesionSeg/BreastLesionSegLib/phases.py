"""Which nodes are the DCE phases, where results go, and what DICOM says about a loaded series.

Two input modes: separate volume nodes (pre + posts in time order), or one 4D ``vtkMRMLSequenceNode``
(frame 0 = pre-contrast). A sequence's frames live in the sequence's own internal scene, so they are
read for the computation but never shown or used to place results: the main scene's proxy node of a
sequence browser is shown instead, and results go under the study of the sequence.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import slicer

from breastlesionseg.errors import InputError

from . import scene_io
from .input_assignment import VolumeCandidate, dicom_time_s
from .settings import INPUT_SEQUENCE

log = logging.getLogger(__name__)

#: DICOM tag of the acquisition time (TM)
ACQUISITION_TIME_TAG = "0008,0032"


@dataclass
class PhaseSelection:
    """The phases of one run and the main-scene nodes that stand for them.

    Attributes:
        pre: pre-contrast volume node (a sequence frame in sequence mode).
        posts: post-contrast volume nodes in time order.
        acquisition_times_s: one time per phase in s (sequence index in s), None when unknown.
        display_node: main-scene volume to show under the results (the pre node, or the sequence's proxy).
        placement_node: main-scene node whose subject-hierarchy study receives the results.
        browser: the sequence browser showing ``display_node`` (sequence mode), else None.
    """

    pre: Any
    posts: list[Any]
    acquisition_times_s: list[float] | None = None
    display_node: Any = None
    placement_node: Any = None
    browser: Any = None

    @property
    def phases(self) -> list[Any]:
        """Pre then posts."""
        return [self.pre, *self.posts]


def select_phases(ctx: Any, input_mode: str, pre: Any = None, posts: Sequence[Any] = (),
                  sequence: Any = None) -> PhaseSelection:
    """The phases of ``input_mode`` from the panel's node choices.

    Raises:
        InputError: nothing (or too little) selected.
    """
    if input_mode == INPUT_SEQUENCE:
        if sequence is None:
            raise InputError("no 4D DCE sequence selected")
        return _sequence_selection(ctx, sequence)
    posts = [p for p in posts if p is not None]
    if pre is None:
        raise InputError("no pre-contrast volume selected")
    if not posts:
        raise InputError("no post-contrast volume selected (select at least one)")
    return PhaseSelection(pre, posts, None, display_node=pre, placement_node=pre)


def _sequence_selection(ctx: Any, sequence: Any) -> PhaseSelection:
    frames = scene_io.sequence_volume_nodes(sequence)
    browser = browser_for_sequence(ctx, sequence)
    proxy = browser.GetProxyNode(sequence)
    if proxy is None:
        raise InputError(f"sequence '{sequence.GetName()}' has no proxy volume in its browser '{browser.GetName()}'")
    return PhaseSelection(frames[0], frames[1:], scene_io.sequence_times_s(sequence), display_node=proxy,
                          placement_node=sequence, browser=browser)


def browser_for_sequence(ctx: Any, sequence: Any) -> Any:
    """A sequence browser of the main scene that plays ``sequence`` (one is made when there is none)."""
    scene = ctx.scene
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode")):
        browser = scene.GetNthNodeByClass(i, "vtkMRMLSequenceBrowserNode")
        if browser.IsSynchronizedSequenceNodeID(sequence.GetID(), True):
            return browser
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", scene.GenerateUniqueName(f"{sequence.GetName()} browser"))
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    _sequences_logic(ctx).UpdateProxyNodesFromSequences(browser)
    return browser


def _sequences_logic(ctx: Any) -> Any:
    logic = ctx.logics.get("Sequences")
    if logic is None:
        raise InputError("the Sequences module is not available: sequence input cannot be shown")
    return logic


def show_pre_contrast(ctx: Any, selection: PhaseSelection) -> Any:
    """Make ``selection.display_node`` show the pre-contrast phase (sequence mode: browse to frame 0).

    Returns the main-scene node to use as the slice views' background.
    """
    if selection.browser is not None:
        selection.browser.SetSelectedItemNumber(0)
        _sequences_logic(ctx).UpdateProxyNodesFromSequences(selection.browser)
    return selection.display_node


def series_number(scene: Any, node: Any) -> int | None:
    """DICOM series number of a volume loaded by Slicer's DICOM module, else None.

    Slicer's DICOM plugins store it on the node's subject-hierarchy series item (attribute
    ``vtkMRMLSubjectHierarchyConstants.GetDICOMSeriesNumberAttributeName()``), not on the node.
    """
    sh = scene.GetSubjectHierarchyNode()
    item = sh.GetItemByDataNode(node) if sh is not None else 0
    if not item:
        return None
    text = sh.GetItemAttribute(item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMSeriesNumberAttributeName())
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def dicom_acquisition_time_s(node: Any, database: Any) -> float | None:
    """Acquisition time (s since midnight) of a volume loaded from DICOM, else None.

    Args:
        node: volume node; Slicer's DICOM scalar volume plugin sets its ``DICOM.instanceUIDs`` attribute.
        database: the DICOM database (``slicer.dicomDatabase``: ``fileForInstance``, ``fileValue``), or None.
    """
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split()
    if not uids or database is None:
        return None
    path = database.fileForInstance(uids[0])
    return dicom_time_s(database.fileValue(path, ACQUISITION_TIME_TAG)) if path else None


def volume_candidates(scene: Any, database: Any = None) -> list[VolumeCandidate]:
    """Scalar volumes of the scene (not label maps, not our own outputs) as input-assignment candidates."""
    out = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if node.IsA("vtkMRMLLabelMapVolumeNode") or node.GetImageData() is None or node.GetHideFromEditors():
            continue
        if node.GetAttribute("BreastLesionSeg.Output"):
            continue
        out.append(VolumeCandidate(node.GetID(), node.GetName(), dicom_acquisition_time_s(node, database),
                                   series_number(scene, node)))
    return out
