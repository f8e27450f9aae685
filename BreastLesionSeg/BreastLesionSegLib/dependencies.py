"""Python dependencies of the module: what is missing and how to install it (never at import).

Slicer's Python ships numpy, SimpleITK and vtk but not torch, MONAI, scipy, slicerio, pynrrd or
matplotlib. The module checks with ``importlib.util.find_spec`` (nothing is imported), tells the
user what is missing, and only after the user confirms installs:

1. torch through the PyTorch extension's installer (``PyTorchUtils.PyTorchUtilsLogic().installTorch``),
   which picks the CUDA/CPU build matching the machine (the extension is an EXTENSION_DEPENDS);
2. the rest with ``slicer.util.pip_install`` at the versions the core package pins, including the
   fast CPU inference runtime (OpenVINO + onnx for the export, the core's ``fast`` extra): without it
   ``segment`` still works, on the slower PyTorch backends.

The Slicer calls are injected, so the decisions here are tested without Slicer.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from breastlesionseg.errors import BreastLesionSegError

log = logging.getLogger(__name__)

#: minimum torch accepted from the PyTorch extension
TORCH_REQUIREMENT = ">=2.1"


@dataclass(frozen=True)
class Requirement:
    """One Python dependency.

    Attributes:
        import_name: top-level module to look for.
        pip_spec: pip requirement (same pin as the core's pyproject.toml).
        via_pytorch_extension: installed by the PyTorch extension rather than pip.
    """

    import_name: str
    pip_spec: str
    via_pytorch_extension: bool = False


#: what the core package needs in Slicer's Python (pins as in pyproject.toml [project.dependencies] and,
#: for the inference runtime, [project.optional-dependencies] fast)
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("torch", "torch==2.13.0", via_pytorch_extension=True),
    Requirement("monai", "monai==1.6.1"),
    Requirement("scipy", "scipy>=1.11"),
    Requirement("SimpleITK", "SimpleITK==2.5.7"),
    Requirement("slicerio", "slicerio==1.4.0"),
    Requirement("nrrd", "pynrrd==1.1.3"),
    Requirement("matplotlib", "matplotlib==3.11.2"),
    Requirement("onnx", "onnx==1.23.2"),
    Requirement("openvino", "openvino==2026.4.1"),
)


class DependencyError(BreastLesionSegError):
    """A dependency could not be installed (or the user declined)."""


@dataclass
class InstallPlan:
    """What to install.

    Attributes:
        missing: the missing requirements.
        torch_via_extension: torch must come from the PyTorch extension.
        pip_specs: requirements for ``slicer.util.pip_install`` (in order).
    """

    missing: list[Requirement] = field(default_factory=list)
    torch_via_extension: bool = False
    pip_specs: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        """True when anything is missing."""
        return bool(self.missing)

    def message(self) -> str:
        """The confirmation text shown to the user."""
        if not self.missing:
            return "All Python packages BreastLesionSeg needs are installed."
        lines = ["BreastLesionSeg needs Python packages that are not installed in Slicer yet:"]
        if self.torch_via_extension:
            lines.append(f"  - PyTorch {TORCH_REQUIREMENT} (installed by the PyTorch extension; the right "
                         "CUDA or CPU build for this computer, may download about 2 GB)")
        lines += [f"  - {spec}" for spec in self.pip_specs]
        lines.append("Install them now? This may take several minutes; Slicer may need a restart afterwards.")
        return "\n".join(lines)


def missing_requirements(requirements: Sequence[Requirement] = REQUIREMENTS,
                         find_spec: Callable[[str], Any] = importlib.util.find_spec) -> list[Requirement]:
    """Requirements whose module cannot be found (nothing is imported)."""
    missing = []
    for req in requirements:
        try:
            found = find_spec(req.import_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(req)
    return missing


def install_plan(missing: Sequence[Requirement]) -> InstallPlan:
    """The plan for ``missing``: torch through the extension, the rest through pip."""
    plan = InstallPlan(missing=list(missing))
    for req in missing:
        if req.via_pytorch_extension:
            plan.torch_via_extension = True
        else:
            plan.pip_specs.append(req.pip_spec)
    return plan


def install(plan: InstallPlan, confirm: Callable[[str], bool], pip_install: Callable[[str], Any],
            pytorch_utils_logic: Callable[[], Any] | None) -> list[str]:
    """Carry out ``plan`` after ``confirm(plan.message())`` returns True; returns what was installed.

    Args:
        plan: from :func:`install_plan`.
        confirm: asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer).
        pip_install: installs one requirement string (``slicer.util.pip_install``).
        pytorch_utils_logic: factory of ``PyTorchUtils.PyTorchUtilsLogic`` (None when the PyTorch
            extension is not installed).

    Raises:
        DependencyError: the user declined, the PyTorch extension is missing, or torch was not installed.
    """
    if not plan.needed:
        return []
    if not confirm(plan.message()):
        raise DependencyError("installation declined: BreastLesionSeg cannot segment without "
                              + ", ".join(r.pip_spec for r in plan.missing))
    installed = []
    if plan.torch_via_extension:
        if pytorch_utils_logic is None:
            raise DependencyError("PyTorch is needed: install the 'PyTorch' extension from the Extensions Manager, "
                                  "restart Slicer, then press Apply again")
        torch_logic = pytorch_utils_logic()
        torch = torch_logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
        if torch is None:
            raise DependencyError("the PyTorch extension did not install torch; install it from the 'PyTorch Util' "
                                  "module and try again")
        installed.append(f"torch{TORCH_REQUIREMENT}")
    for spec in plan.pip_specs:
        log.info("installing %s", spec)
        pip_install(spec)
        installed.append(spec)
    return installed
