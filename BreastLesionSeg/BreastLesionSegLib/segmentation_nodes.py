"""Results (breast mask + lesion instances) <-> a Slicer segmentation node, and back to label arrays.

Segments: "Breast left", "Breast right" (patient's sides, ``breastlesionseg.labels``), then
"Lesion 1".."Lesion N" (numbered by decreasing volume), each with a colour and a standard
terminology entry (DICOM master list codes) so Segment Editor shows them properly. Breast and lesion
segments overlap by construction (a lesion lies inside a breast), so Slicer stores them in
separate labelmap layers; exporting back therefore works one segment at a time.

Low-confidence *candidates* of a run (``candidates.nii.gz``, ``metrics.json["candidates"]``) become
hidden segments "Candidate k (confidence 0.07)" without a terminology and with the segment tag
:data:`CANDIDATE_TAG`: they are neither lesions nor breast (:func:`classify_segment` leaves them out
of the table, the curves and the training export) until the reader promotes one
(:func:`promote_candidate`, or renames it "Lesion ..." / gives it the Mass terminology in Segment Editor);
:func:`candidate_state` says which (the candidate table's "promoted" column).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support as nps

from breastlesionseg.errors import GeometryError, InputError
from breastlesionseg.geometry import Volume
from breastlesionseg.io import terminology
from breastlesionseg.labels import BREAST_LABEL_NAMES, BREAST_LEFT, BREAST_RIGHT, LESION_SEGMENT_PREFIX, lesion_segment_name

from .scene_io import ijk_to_ras_matrix, volume_from_node

log = logging.getLogger(__name__)

#: RGB 0..1 of the breast segments, and lesion colours (cycled): shared with the CLI's .seg.nrrd writer.
BREAST_COLORS = {BREAST_LEFT: terminology.BREAST_LEFT_COLOR, BREAST_RIGHT: terminology.BREAST_RIGHT_COLOR}
LESION_COLORS = terminology.LESION_COLORS


def breast_terminology(side: str) -> str:
    """Slicer terminology string of the breast segment of ``side`` ("left"/"right")."""
    return terminology.terminology_string(terminology.breast_terminology(side))


def lesion_terminology(side: str | None = None) -> str:
    """Slicer terminology string of a lesion segment: Mass in the Breast (with laterality when known)."""
    return terminology.terminology_string(terminology.lesion_terminology(side))


@dataclass(frozen=True)
class SegmentSpec:
    """How one result label becomes a segment.

    Attributes:
        segment_id: segment id in the node ("breast_left", "lesion_3").
        name: displayed name ("Breast left", "Lesion 3").
        color: RGB in 0..1.
        terminology: Slicer terminology string.
    """

    segment_id: str
    name: str
    color: tuple[float, float, float]
    terminology: str


def breast_spec(label: int) -> SegmentSpec:
    """Spec of breast label 1 (left) or 2 (right)."""
    if label not in BREAST_LABEL_NAMES:
        raise ValueError(f"breast label must be {BREAST_LEFT} or {BREAST_RIGHT}, got {label}")
    side = "left" if label == BREAST_LEFT else "right"
    return SegmentSpec(f"breast_{side}", BREAST_LABEL_NAMES[label], BREAST_COLORS[label], breast_terminology(side))


def lesion_spec(index: int, side: str | None = None) -> SegmentSpec:
    """Spec of lesion ``index`` (1-based); ``side`` "left"/"right" adds the laterality to the terminology."""
    return SegmentSpec(f"lesion_{index}", lesion_segment_name(index), terminology.lesion_color(index),
                       lesion_terminology(side))


#: segment tag of a low-confidence candidate (value: its confidence); removed when it is promoted
CANDIDATE_TAG = "BreastLesionSeg.CandidateConfidence"
#: colour of candidate segments (muted yellow: not a reported lesion)
CANDIDATE_COLOR = (0.85, 0.8, 0.35)


def candidate_segment_id(index: int) -> str:
    """Segment id of candidate ``index`` (1-based, the label in ``candidates.nii.gz``)."""
    return f"candidate_{int(index)}"


def candidate_spec(index: int, confidence: float) -> SegmentSpec:
    """Spec of candidate ``index`` (1-based, the label in ``candidates.nii.gz``): no terminology, so it is
    not counted as a lesion."""
    return SegmentSpec(candidate_segment_id(index), f"Candidate {index} (confidence {confidence:.2f})",
                       CANDIDATE_COLOR, "")


# --- node creation ------------------------------------------------------------------------------------
def _oriented_image(reference_node: Any, mask_kji: np.ndarray) -> Any:
    """uchar ``vtkOrientedImageData`` on the reference volume's grid filled with ``mask_kji`` (0/1)."""
    extent = reference_node.GetImageData().GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    if tuple(mask_kji.shape) != shape:
        raise GeometryError(f"mask shape {mask_kji.shape} does not match volume '{reference_node.GetName()}' "
                            f"(k, j, i) = {shape}")
    oi = slicer.vtkOrientedImageData()
    oi.SetExtent(extent)
    oi.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras_matrix(reference_node, world=False)))
    oi.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    nps.vtk_to_numpy(oi.GetPointData().GetScalars())[:] = (np.asarray(mask_kji) != 0).astype(np.uint8).ravel()
    return oi


def subject_hierarchy_study_item(scene: Any, node: Any) -> int:
    """Subject-hierarchy parent item (study, or patient/scene) of ``node``'s item."""
    sh = scene.GetSubjectHierarchyNode()
    item = sh.GetItemByDataNode(node)
    if not item:
        return sh.GetSceneItemID()
    return sh.GetItemParent(item)


def place_beside(scene: Any, node: Any, reference_node: Any) -> None:
    """Put ``node`` under the same subject-hierarchy parent (the study) and transform as ``reference_node``
    (a volume, or a sequence node, which has no transform)."""
    sh = scene.GetSubjectHierarchyNode()
    item = sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)
    sh.SetItemParent(item, subject_hierarchy_study_item(scene, reference_node))
    transform = reference_node.GetParentTransformNode() if reference_node.IsA("vtkMRMLTransformableNode") else None
    if transform is not None and hasattr(node, "SetAndObserveTransformNodeID"):
        node.SetAndObserveTransformNodeID(transform.GetID())


def create_segmentation_node(ctx: Any, reference_node: Any, name: str) -> Any:
    """An empty segmentation node on ``reference_node``'s grid, placed in the study of that volume."""
    scene = ctx.scene
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    place_beside(scene, seg, reference_node)
    return seg


def set_segment_mask(ctx: Any, seg_node: Any, reference_node: Any, spec: SegmentSpec, mask_kji: np.ndarray) -> str:
    """Create or replace the segment ``spec.segment_id`` with ``mask_kji`` (on the reference grid); returns its id."""
    segmentation = seg_node.GetSegmentation()
    if not segmentation.GetSegment(spec.segment_id):
        added = segmentation.AddEmptySegment(spec.segment_id, spec.name, spec.color)
        if not added:
            raise RuntimeError(f"could not add segment '{spec.name}' to '{seg_node.GetName()}' "
                               "(segmentation converter rules not registered?)")
    segment = segmentation.GetSegment(spec.segment_id)
    segment.SetName(spec.name)
    segment.SetColor(spec.color)
    segment.SetTerminology(spec.terminology)
    segment.SetNameAutoGenerated(False)  # keep "Lesion 3" even though a terminology is set
    segment.SetColorAutoGenerated(False)
    oi = _oriented_image(reference_node, mask_kji)
    if not ctx.segmentations.SetBinaryLabelmapToSegment(oi, seg_node, spec.segment_id,
                                                       ctx.segmentations.MODE_REPLACE, oi.GetExtent()):
        raise RuntimeError(f"writing segment '{spec.name}' into '{seg_node.GetName()}' failed")
    return spec.segment_id


def _check_result_grid(result: Volume, reference_node: Any, what: str) -> None:
    ref = volume_from_node(reference_node).geometry
    if not result.geometry.same_grid(ref):
        raise GeometryError(f"{what} is not on the grid of the reference volume '{reference_node.GetName()}': "
                            f"{result.geometry.to_dict()} vs {ref.to_dict()}")


def write_results_to_segmentation(ctx: Any, seg_node: Any, reference_node: Any, breast_mask: Volume | None,
                                  lesion_labels: Volume, lesion_sides: dict[int, str] | None = None) -> list[str]:
    """Fill ``seg_node`` with Breast left/right (when ``breast_mask`` is given) and Lesion 1..N.

    Args:
        ctx: ``MRMLContext``.
        seg_node: target segmentation node (segments with the same ids are replaced).
        reference_node: the pre-contrast volume node the results were computed on.
        breast_mask: 0/1/2 mask ``(z, y, x)`` on the pre grid, or None.
        lesion_labels: 0..N lesion instances ``(z, y, x)`` on the pre grid.
        lesion_sides: lesion index -> "left"/"right" (terminology laterality), optional.

    Returns:
        The segment ids written, breast first then lesions in index order.

    Raises:
        GeometryError: a result is not on the reference volume's grid.
    """
    _check_result_grid(lesion_labels, reference_node, "lesion label map")
    ids = []
    if breast_mask is not None:
        _check_result_grid(breast_mask, reference_node, "breast mask")
        for label in (BREAST_LEFT, BREAST_RIGHT):
            ids.append(set_segment_mask(ctx, seg_node, reference_node, breast_spec(label), breast_mask.array == label))
    labels = np.asarray(lesion_labels.array)
    present = sorted(int(v) for v in np.unique(labels) if v > 0)
    if present and present != list(range(1, present[-1] + 1)):
        log.warning("lesion labels are not consecutive: %s", present)
    for index in present:
        side = (lesion_sides or {}).get(index)
        ids.append(set_segment_mask(ctx, seg_node, reference_node, lesion_spec(index, side), labels == index))
    seg_node.Modified()
    return ids


def write_candidate_segments(ctx: Any, seg_node: Any, reference_node: Any, candidate_labels: Volume,
                             candidates: Sequence[dict]) -> list[str]:
    """Add one hidden segment per candidate of ``metrics.json["candidates"]`` (``id``, ``confidence``).

    Args:
        candidate_labels: 1..M candidate labels ``(z, y, x)`` on the reference grid (``candidates.nii.gz``).
        candidates: the candidate dicts; a candidate whose label is absent from the map is skipped (logged).

    Returns:
        The candidate segment ids, in the order of ``candidates``.

    Raises:
        GeometryError: the map is not on the reference volume's grid.
    """
    _check_result_grid(candidate_labels, reference_node, "candidate label map")
    labels = np.asarray(candidate_labels.array)
    display = seg_node.GetDisplayNode()
    ids = []
    for cand in candidates:
        index, confidence = int(cand["id"]), float(cand.get("confidence") or 0.0)
        mask = labels == index
        if not mask.any():
            log.warning("candidate %d of metrics.json is not in the candidate map; skipped", index)
            continue
        sid = set_segment_mask(ctx, seg_node, reference_node, candidate_spec(index, confidence), mask)
        seg_node.GetSegmentation().GetSegment(sid).SetTag(CANDIDATE_TAG, f"{confidence:.6g}")
        if display is not None:
            display.SetSegmentVisibility(sid, False)
        ids.append(sid)
    return ids


def candidate_segment_ids(seg_node: Any) -> list[str]:
    """Ids of the segments that are still candidates: tagged, and not made a lesion by the reader (renamed
    "Lesion ..." or given the Mass terminology)."""
    out = []
    for sid in segment_ids(seg_node):
        segment = seg_node.GetSegmentation().GetSegment(sid)
        if segment.GetTag(CANDIDATE_TAG, vtk.reference("")) and \
                classify_segment(segment.GetName(), segment.GetTerminology())[0] == "other":
            out.append(sid)
    return out


def candidate_state(seg_node: Any, segment_id: str) -> tuple[str | None, bool]:
    """(current segment name, promoted) of a candidate's segment: promoted when it now counts as a lesion
    (:func:`promote_candidate`, or renamed "Lesion ..." / given the Mass terminology by the reader); the name is
    None when the reader deleted the segment."""
    segment = seg_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        return None, False
    return segment.GetName(), classify_segment(segment.GetName(), segment.GetTerminology())[0] == "lesion"


def promote_candidate(seg_node: Any, segment_id: str) -> str:
    """Make candidate ``segment_id`` a lesion: named "Lesion k" (k = number of lesion segments + 1), Mass
    terminology, lesion colour, shown; the candidate tag is removed. Returns the new name.

    Raises:
        InputError: no such segment, or it is not a candidate.
    """
    segmentation = seg_node.GetSegmentation()
    segment = segmentation.GetSegment(segment_id)
    if segment is None or segment_id not in candidate_segment_ids(seg_node):
        raise InputError(f"segment '{segment_id}' of '{seg_node.GetName()}' is not a lesion candidate")
    n_lesions = sum(1 for sid in segment_ids(seg_node) if classify_segment(
        segmentation.GetSegment(sid).GetName(), segmentation.GetSegment(sid).GetTerminology())[0] == "lesion")
    spec = lesion_spec(n_lesions + 1)
    segment.RemoveTag(CANDIDATE_TAG)
    segment.SetName(spec.name)
    segment.SetColor(spec.color)
    segment.SetTerminology(spec.terminology)
    segment.SetNameAutoGenerated(False)
    segment.SetColorAutoGenerated(False)
    if seg_node.GetDisplayNode() is not None:
        seg_node.GetDisplayNode().SetSegmentVisibility(segment_id, True)
    seg_node.Modified()
    return spec.name


# --- back to label arrays --------------------------------------------------------------------------------
def segment_ids(seg_node: Any) -> list[str]:
    """All segment ids of a segmentation node in display order."""
    s = seg_node.GetSegmentation()
    return [s.GetNthSegmentID(i) for i in range(s.GetNumberOfSegments())]


def export_segment_mask(ctx: Any, seg_node: Any, segment_id: str, reference_node: Any) -> np.ndarray:
    """One segment as a boolean ``(k, j, i)`` mask on ``reference_node``'s grid.

    The temporary label map node and the colour table the export creates are removed again.
    """
    scene = ctx.scene
    if not seg_node.GetSegmentation().GetSegment(segment_id):
        raise InputError(f"segmentation '{seg_node.GetName()}' has no segment with id '{segment_id}'")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    colors_before = {scene.GetNthNodeByClass(i, "vtkMRMLColorNode").GetID()
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLColorNode"))}
    lm = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__bls_export__")
    try:
        if not ctx.segmentations.ExportSegmentsToLabelmapNode(seg_node, ids, lm, reference_node):
            raise RuntimeError(f"exporting segment '{segment_id}' of '{seg_node.GetName()}' failed")
        if lm.GetImageData().GetDimensions() != reference_node.GetImageData().GetDimensions():
            raise GeometryError(f"exported segment '{segment_id}' is not on the grid of '{reference_node.GetName()}'")
        return slicer.util.arrayFromVolume(lm) > 0
    finally:
        for i in reversed(range(scene.GetNumberOfNodesByClass("vtkMRMLColorNode"))):
            cn = scene.GetNthNodeByClass(i, "vtkMRMLColorNode")
            if cn.GetID() not in colors_before:
                scene.RemoveNode(cn)
        if lm.GetDisplayNode() is not None:
            scene.RemoveNode(lm.GetDisplayNode())
        scene.RemoveNode(lm)


def _parse_terminology(text: str) -> dict | None:
    """Terminology entry dict of a serialized string, None when empty or malformed."""
    if not text or text.count("~") < 6:
        return None
    try:
        return terminology.parse_terminology_string(text)
    except (IndexError, ValueError):
        return None


def classify_segment(name: str, terminology_text: str) -> tuple[str, int | None]:
    """("breast", 1 or 2) / ("lesion", None) / ("other", None) from a segment's name and terminology.

    Terminology wins (a segment the radiologist typed as "Mass" is a lesion whatever its name); the
    names "Breast left"/"Breast right" and "Lesion ..." are accepted for segments without one.
    """
    lowered = name.strip().lower()
    entry = _parse_terminology(terminology_text)
    side = terminology.breast_side_of_terminology(entry)
    if side is None and lowered in ("breast left", "breast right"):
        side = lowered.split()[1]
    if side is not None:
        return "breast", BREAST_LEFT if side == "left" else BREAST_RIGHT
    if terminology.is_lesion_terminology(entry) or re.match(rf"^{LESION_SEGMENT_PREFIX.lower()}\b", lowered):
        return "lesion", None
    return "other", None


@dataclass
class SegmentationLabels:
    """Label arrays recovered from a (possibly edited) segmentation node.

    Attributes:
        breast_mask: 0/1/2 ``Volume`` on the reference grid (None when no breast segment exists).
        lesion_labels: 0..N ``Volume``, lesions renumbered by decreasing volume (1 = largest).
        lesion_segment_ids: segment id of lesion label ``k`` at position ``k - 1``.
        ignored_segment_ids: segments neither breast nor lesion.
    """

    breast_mask: Volume | None
    lesion_labels: Volume
    lesion_segment_ids: list[str]
    ignored_segment_ids: list[str]


def labels_from_segmentation(ctx: Any, seg_node: Any, reference_node: Any,
                             only_segment_ids: Iterable[str] | None = None) -> SegmentationLabels:
    """Export the breast and lesion segments of ``seg_node`` to label arrays on ``reference_node``'s grid.

    Lesion segments are recognised by terminology (Mass) or by a name starting with "Lesion"; breast
    segments by terminology (Breast + Left/Right) or the names "Breast left"/"Breast right". Lesions
    are renumbered by decreasing voxel count; a voxel covered by two lesion segments goes to the larger.
    Empty lesion segments are dropped.
    """
    if seg_node is None or not seg_node.IsA("vtkMRMLSegmentationNode"):
        raise InputError("no segmentation node selected")
    geometry = volume_from_node(reference_node).geometry
    wanted = set(only_segment_ids) if only_segment_ids is not None else None
    breast = np.zeros(geometry.shape_zyx, np.uint8)
    have_breast = False
    lesions: list[tuple[int, int, str, np.ndarray]] = []
    ignored = []
    for order, sid in enumerate(segment_ids(seg_node)):
        if wanted is not None and sid not in wanted:
            continue
        segment = seg_node.GetSegmentation().GetSegment(sid)
        kind, label = classify_segment(segment.GetName(), segment.GetTerminology())
        if kind == "other":
            ignored.append(sid)
            continue
        mask = export_segment_mask(ctx, seg_node, sid, reference_node)
        if kind == "breast":
            breast[mask & (breast == 0)] = label
            have_breast = True
        elif mask.any():
            lesions.append((-int(mask.sum()), order, sid, mask))
    lesions.sort(key=lambda t: (t[0], t[1]))
    lesion_labels = np.zeros(geometry.shape_zyx, np.uint16 if len(lesions) > 255 else np.uint8)
    for k, (_, _, _, mask) in enumerate(lesions, start=1):
        lesion_labels[mask & (lesion_labels == 0)] = k
    if ignored:
        log.info("segments neither breast nor lesion (ignored): %s", ignored)
    return SegmentationLabels(
        breast_mask=Volume(breast, geometry, name="breast_mask") if have_breast else None,
        lesion_labels=Volume(lesion_labels, geometry, name="lesion_labels"),
        lesion_segment_ids=[t[2] for t in lesions],
        ignored_segment_ids=ignored,
    )


def segment_names(seg_node: Any, ids: Sequence[str]) -> list[str]:
    """Names of the given segment ids."""
    s = seg_node.GetSegmentation()
    return [s.GetSegment(i).GetName() for i in ids]
