"""Python dependencies of the module: what is missing and how to install it (never at import).

Slicer's Python ships numpy, SimpleITK and vtk but not torch, MONAI, scipy, slicerio, pynrrd or
matplotlib. The module checks with ``importlib.util.find_spec`` (nothing is imported), tells the
user what is missing, and only after the user confirms installs:

1. torch through the PyTorch extension's installer (``PyTorchUtils.PyTorchUtilsLogic().installTorch``),
   which picks the CUDA/CPU build matching the machine (the extension is an EXTENSION_DEPENDS);
2. the rest with ONE ``slicer.util.pip_install`` call at the versions the core package pins, with a
   constraint file that pins the torch the PyTorch extension installed, so pip never replaces it.

The fast CPU inference runtime (OpenVINO, the core's ``fast`` extra) is optional: without it
``segment`` still works on the slower PyTorch backends, so it neither disables the panel nor the
self-test; it is offered in the same installation.

The Slicer calls are injected, so the decisions here are tested without Slicer.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from breastlesionseg.errors import BreastLesionSegError

log = logging.getLogger(__name__)

#: minimum torch accepted from the PyTorch extension (MONAI 1.6 requires torch >= 2.8)
TORCH_REQUIREMENT = ">=2.8"


@dataclass(frozen=True)
class Requirement:
    """One Python dependency.

    Attributes:
        import_name: top-level module to look for.
        pip_spec: pip requirement (same pin as the core's pyproject.toml).
        via_pytorch_extension: installed by the PyTorch extension rather than pip.
        optional: the module works without it (it is offered, never required).
    """

    import_name: str
    pip_spec: str
    via_pytorch_extension: bool = False
    optional: bool = False


#: what the core package needs in Slicer's Python (pins as in pyproject.toml [project.dependencies] and,
#: for the inference runtime, [project.optional-dependencies] fast). numpy and pydicom ship with Slicer.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("torch", "torch==2.13.0", via_pytorch_extension=True),
    Requirement("monai", "monai==1.6.1"),
    Requirement("scipy", "scipy>=1.11"),
    Requirement("SimpleITK", "SimpleITK==2.5.7"),
    Requirement("slicerio", "slicerio==1.4.0"),
    Requirement("nrrd", "pynrrd==1.1.3"),
    Requirement("matplotlib", "matplotlib==3.11.2"),
    Requirement("openvino", "openvino==2026.4.1", optional=True),
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
        """True when a required package is missing (the panel's actions and the self-test need it)."""
        return any(not r.optional for r in self.missing)

    @property
    def offered(self) -> bool:
        """True when anything, required or optional, could be installed."""
        return bool(self.missing)

    def message(self) -> str:
        """The confirmation text shown to the user."""
        if not self.missing:
            return "All Python packages BreastLesionSeg needs are installed."
        required = [r for r in self.missing if not r.optional]
        optional = [r for r in self.missing if r.optional]
        lines = ["BreastLesionSeg needs Python packages that are not installed in Slicer yet:" if required else
                 "All required Python packages are installed."]
        if self.torch_via_extension:
            lines.append(f"  - PyTorch {TORCH_REQUIREMENT} (installed by the PyTorch extension; the right "
                         "CUDA or CPU build for this computer, may download about 2 GB)")
        lines += [f"  - {r.pip_spec}" for r in required if not r.via_pytorch_extension]
        if optional:
            lines.append("Optional, for faster CPU segmentation: " + ", ".join(r.pip_spec for r in optional))
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


def pip_arguments(plan: InstallPlan, torch_version: str | None, constraint_file: str | os.PathLike) -> list[str]:
    """The arguments of the single ``pip install`` call: every pip requirement, and ``--constraint`` on a
    file pinning ``torch==<torch_version>`` when torch is installed (so pip cannot replace it)."""
    args = list(plan.pip_specs)
    if torch_version:
        Path(constraint_file).write_text(f"torch=={torch_version}\n", encoding="utf-8")
        args += ["--constraint", str(constraint_file)]
    return args


def installed_torch_version() -> str | None:
    """The installed torch distribution's version (without importing torch), None when absent."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def install(plan: InstallPlan, confirm: Callable[[str], bool], pip_install: Callable[[list[str]], Any],
            pytorch_utils_logic: Callable[[], Any] | None, torch_version: Callable[[], str | None] = installed_torch_version
            ) -> list[str]:
    """Carry out ``plan`` after ``confirm(plan.message())`` returns True; returns what was installed.

    Args:
        plan: from :func:`install_plan`.
        confirm: asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer).
        pip_install: runs ``pip install`` with a list of arguments (``slicer.util.pip_install``); called once.
        pytorch_utils_logic: factory of ``PyTorchUtils.PyTorchUtilsLogic`` (None when the PyTorch
            extension is not installed).
        torch_version: returns the installed torch version (read after the PyTorch extension ran).

    Raises:
        DependencyError: the user declined, the PyTorch extension is missing, or torch was not installed.
    """
    if not plan.offered:
        return []
    if not confirm(plan.message()):
        raise DependencyError("installation declined: BreastLesionSeg cannot segment without "
                              + ", ".join(r.pip_spec for r in plan.missing if not r.optional))
    installed = []
    if plan.torch_via_extension:
        if pytorch_utils_logic is None:
            raise DependencyError("PyTorch is needed: install the 'PyTorch' extension from the Extensions Manager, "
                                  "restart Slicer, then install the dependencies again")
        torch = pytorch_utils_logic().installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
        if torch is None:
            raise DependencyError("the PyTorch extension did not install torch; install it from the 'PyTorch Util' "
                                  "module and try again")
        installed.append(f"torch{TORCH_REQUIREMENT}")
    if plan.pip_specs:
        with tempfile.TemporaryDirectory(prefix="bls_pip_") as tmp:
            args = pip_arguments(plan, torch_version(), Path(tmp) / "torch-constraint.txt")
            log.info("pip install %s", " ".join(args))
            pip_install(args)
        installed += plan.pip_specs
    return installed


def self_test_skip_reason(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> str | None:
    """Why the self-test cannot run here (a required package is missing), or None when it can.

    Optional packages (the fast CPU runtime) never stop it: the pipeline falls back to PyTorch.
    """
    plan = install_plan(missing_requirements(find_spec=find_spec))
    return plan.message() if plan.needed else None
