"""Checks of the Slicer GUI/build files that run without Slicer: .ui validity and widget names,
CMake script/resource lists, extension metadata, lazy imports of the module file."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODULE_DIR = ROOT / "BreastLesionSeg"
MODULE_FILE = MODULE_DIR / "BreastLesionSeg.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "BreastLesionSeg.ui"
MODULE_CMAKE = MODULE_DIR / "CMakeLists.txt"
TOP_CMAKE = ROOT / "CMakeLists.txt"

#: Qt classes used in the .ui (plain Qt widgets need no <customwidget> entry)
QT_CLASSES = {"QWidget", "QGroupBox", "QLabel", "QPushButton", "QRadioButton", "QListWidget", "QComboBox",
              "QCheckBox", "QDoubleSpinBox", "QSpinBox", "QProgressBar", "QPlainTextEdit", "QLineEdit", "QTableView"}


def _ui_widgets() -> dict[str, str]:
    tree = ET.parse(UI_FILE)  # raises on invalid XML
    root = tree.getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    names: dict[str, str] = {}
    for w in root.iter("widget"):
        assert w.get("name") not in names, f"duplicate widget name {w.get('name')}"
        names[w.get("name")] = w.get("class")
    return names


def test_ui_is_valid_designer_xml_with_declared_custom_widgets():
    widgets = _ui_widgets()
    root = ET.parse(UI_FILE).getroot()
    custom = {c.findtext("class"): c for c in root.iter("customwidget")}
    for name, cls in widgets.items():
        assert cls in QT_CLASSES or cls in custom, f"widget {name}: class {cls} is neither Qt nor a declared custom widget"
    for cls, c in custom.items():
        assert c.findtext("extends") and c.findtext("header") == f"{cls}.h", cls
    assert root.find("widget").get("class") == "qMRMLWidget"  # so setMRMLScene reaches the node selectors
    receivers = {c.findtext("receiver") for c in root.iter("connection") if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    mrml_widgets = {n for n, cls in widgets.items() if cls.startswith("qMRML") and cls != "qMRMLWidget"}
    assert mrml_widgets <= receivers, f"MRML widgets without a scene connection: {mrml_widgets - receivers}"


def test_every_widget_the_module_uses_exists_in_the_ui():
    used = set(re.findall(r"self\.ui\.([A-Za-z_][A-Za-z0-9_]*)", MODULE_FILE.read_text()))
    assert len(used) > 30
    missing = sorted(used - set(_ui_widgets()))
    assert not missing, f"widgets used in BreastLesionSeg.py but absent from the .ui: {missing}"


def _cmake_list(text: str, var: str) -> list[str]:
    m = re.search(rf"set\({var}\s+(.*?)\)", text, re.S)
    assert m, f"{var} not set"
    return [t.replace("${MODULE_NAME}", "BreastLesionSeg") for t in m.group(1).split() if not t.startswith("#")]


def test_every_script_and_resource_is_listed_in_the_module_cmake():
    text = MODULE_CMAKE.read_text()
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    for rel in scripts + resources:
        assert (MODULE_DIR / rel).is_file(), f"listed but missing: {rel}"
    lib_files = sorted(str(p.relative_to(MODULE_DIR)) for p in (MODULE_DIR / "BreastLesionSegLib").rglob("*.py"))
    unlisted = sorted(set(lib_files + ["BreastLesionSeg.py"]) - set(scripts))
    assert not unlisted, f"scripts not listed in MODULE_PYTHON_SCRIPTS: {unlisted}"
    res_files = sorted(str(p.relative_to(MODULE_DIR)) for p in (MODULE_DIR / "Resources").rglob("*")
                       if p.is_file() and "Models" not in p.parts)
    assert sorted(set(res_files) - set(resources)) == [], "resources not listed in MODULE_PYTHON_RESOURCES"
    # the core package ships inside the module folder through a recursive glob
    assert re.search(r"GLOB_RECURSE\s+BREASTLESIONSEG_CORE_SCRIPTS.*breastlesionseg/\*\.py", text, re.S)
    assert "list(APPEND MODULE_PYTHON_SCRIPTS ${BREASTLESIONSEG_CORE_SCRIPTS})" in text
    assert re.search(r"slicerMacroBuildScriptedModule\(\s*NAME \$\{MODULE_NAME\}", text)
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    assert (MODULE_DIR / "Testing" / "CMakeLists.txt").is_file()


def test_extension_metadata():
    text = TOP_CMAKE.read_text()
    meta = dict(re.findall(r'set\((EXTENSION_[A-Z]+)\s+"([^"]*)"\)', text))
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                "EXTENSION_SCREENSHOTURLS"):
        assert meta.get(key, "").strip(), f"{key} is empty"
    assert meta["EXTENSION_CATEGORY"] == "Segmentation"
    assert "PyTorch" in meta["EXTENSION_DEPENDS"].split()
    assert meta["EXTENSION_ICONURL"].endswith("Resources/Icons/BreastLesionSeg.png")
    assert (ROOT / "Resources" / "Icons" / "BreastLesionSeg.png").is_file()
    assert meta["EXTENSION_SCREENSHOTURLS"].endswith("Resources/Screenshots/walkthrough.png")
    assert (ROOT / "Resources" / "Screenshots" / "walkthrough.png").is_file()
    assert "add_subdirectory(BreastLesionSeg)" in text
    assert "find_package(Slicer REQUIRED)" in text and "Slicer_EXTENSION_CPACK" in text


@pytest.mark.parametrize("icon", [MODULE_DIR / "Resources" / "Icons" / "BreastLesionSeg.png",
                                  ROOT / "Resources" / "Icons" / "BreastLesionSeg.png"])
def test_icons_are_128_pixel_pngs(icon):
    import matplotlib.image as mpimg

    assert mpimg.imread(icon).shape[:2] == (128, 128)


def test_module_file_imports_only_the_dependency_check_at_load_time():
    tree = ast.parse(MODULE_FILE.read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    lib = [n.module for n in top if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("BreastLesionSeg")]
    assert lib == ["BreastLesionSegLib.dependencies"]
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"BreastLesionSeg", "BreastLesionSegWidget", "BreastLesionSegTest"} <= classes
    compile(MODULE_FILE.read_text(), str(MODULE_FILE), "exec")


def test_dependency_check_works_without_torch_monai_scipy():
    """Slicer without the packages: the check must import and name them (the module explains itself)."""
    code = (
        "import sys\n"
        "for name in ('torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib'): sys.modules[name] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "blocked = {'torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib'}\n"
        "from BreastLesionSegLib import dependencies as d\n"
        "missing = d.missing_requirements(find_spec=lambda n: None if n in blocked else real(n))\n"
        "plan = d.install_plan(missing)\n"
        "print([r.import_name for r in missing]); print(plan.torch_via_extension); print(plan.pip_specs)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=MODULE_DIR, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib']"
    assert lines[1] == "True" and "monai==1.6.1" in lines[2] and "torch" not in lines[2]


def test_everything_the_widget_calls_exists_in_the_logic_package():
    """The widget cannot run here, so check statically that its calls into BreastLesionSegLib resolve."""
    import importlib

    from BreastLesionSegLib.logic import BreastLesionSegLogic

    source = MODULE_FILE.read_text()
    for attr in sorted(set(re.findall(r"self\.logic\.([A-Za-z_]+)", source))):
        assert hasattr(BreastLesionSegLogic, attr), f"BreastLesionSegLogic has no '{attr}'"
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("BreastLesionSegLib"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no '{alias.name}'"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("breastlesionseg"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no '{alias.name}'"
