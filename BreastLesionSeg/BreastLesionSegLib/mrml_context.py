"""The MRML scene and the module logics the BreastLesionSeg logic works with.

Inside the Slicer application the scene and the module logics come from ``slicer.mrmlScene`` and
``slicer.modules.<name>.logic()`` (:func:`context_from_slicer_application`). Outside it (pytest,
headless batch processing with the ``slicer-core`` wheel) :func:`create_standalone_context` builds a
real scene with the same logics, initialised the way the application's loadable modules do it.
Every function in this package takes a :class:`MRMLContext` (or a scene) explicitly, so the same code
runs in both places.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import slicer

log = logging.getLogger(__name__)


@dataclass
class MRMLContext:
    """A scene plus the module logics used by this package.

    Attributes:
        scene: the ``vtkMRMLScene``.
        segmentations: ``vtkSlicerSegmentationsModuleLogic`` bound to ``scene``.
        app_logic: ``vtkSlicerApplicationLogic`` (None inside Slicer when not needed).
        logics: other module logics by module name ("Volumes", "Tables", ...).
    """

    scene: Any
    segmentations: Any
    app_logic: Any = None
    logics: dict[str, Any] = field(default_factory=dict)
    _keep_alive: list[Any] = field(default_factory=list, repr=False)


def deduplicate_converter_rules() -> int:
    """Remove duplicate segmentation converter rules; returns how many rules remain.

    ``vtkSlicerSegmentationsModuleLogic.SetMRMLScene`` registers the converter rules (binary labelmap
    <-> closed surface, ...) in the process-wide ``vtkSegmentationConverterFactory`` each time it is
    called, so every new scene would otherwise add another copy of each rule.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    seen: set[str] = set()
    for rule in list(factory.GetConverterRules()):
        if rule.GetName() in seen:
            factory.UnregisterConverterRule(rule)
        else:
            seen.add(rule.GetName())
    return len(seen)


def create_standalone_context(with_mrb_io: bool = False, cache_dir: str | None = None) -> MRMLContext:
    """A new scene with the application and module logics (slicer-core, no Qt).

    Mirrors what ``qSlicerCoreApplication`` and the loadable modules' ``setup()`` do: colour logic with
    the default colour tables, Volumes, Segmentations (registers the converter rules), Subject
    hierarchy, Tables, Plots and Sequences logics.

    Args:
        with_mrb_io: also set up the data I/O manager that ``scene.ReadFromMRB`` needs.
        cache_dir: remote-cache folder for the data I/O manager (a temporary folder when None).
    """
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    colors = app.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app.SetModuleLogic("Colors", colors)
    logics: dict[str, Any] = {}

    def register(name: str, logic: Any) -> Any:
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app)
        app.SetModuleLogic(name, logic)
        logics[name] = logic
        return logic

    register("Volumes", slicer.vtkSlicerVolumesLogic())
    seg_logic = register("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic())
    deduplicate_converter_rules()
    register("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic())
    register("Tables", slicer.vtkSlicerTablesLogic())
    register("Plots", slicer.vtkSlicerPlotsLogic())
    register("Sequences", slicer.vtkSlicerSequencesLogic())
    ctx = MRMLContext(scene=scene, segmentations=seg_logic, app_logic=app, logics=logics)
    if with_mrb_io:
        import tempfile

        remote_io = slicer.vtkMRMLRemoteIOLogic()
        remote_io.SetMRMLScene(scene)
        remote_io.SetMRMLApplicationLogic(app)
        remote_io.GetCacheManager().SetRemoteCacheDirectory(cache_dir or tempfile.mkdtemp(prefix="bls_mrb_cache_"))
        dio = slicer.vtkDataIOManagerLogic()
        dio.SetMRMLScene(scene)
        dio.SetMRMLApplicationLogic(app)
        dio.SetAndObserveDataIOManager(remote_io.GetDataIOManager())
        remote_io.AddDataIOToScene()
        ctx._keep_alive.extend([remote_io, dio])
    return ctx


def context_from_slicer_application() -> MRMLContext:
    """The running Slicer application's scene and module logics (only inside Slicer)."""
    modules = getattr(slicer, "modules", None)
    if modules is None or not hasattr(slicer, "mrmlScene"):
        raise RuntimeError("context_from_slicer_application() needs the Slicer application; "
                           "use create_standalone_context() with slicer-core")
    logics = {}
    for name in ("volumes", "subjecthierarchy", "tables", "plots", "sequences"):
        module = getattr(modules, name, None)
        if module is not None:
            logics[name.capitalize() if name != "subjecthierarchy" else "SubjectHierarchy"] = module.logic()
    return MRMLContext(scene=slicer.mrmlScene, segmentations=modules.segmentations.logic(),
                       app_logic=slicer.app.applicationLogic(), logics=logics)
