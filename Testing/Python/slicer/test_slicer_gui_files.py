"""Checks of the Slicer GUI/build files that run without Slicer: .ui validity and widget names, the
parameter-node wrapper's fields against the .ui bindings and the plain settings, CMake script/resource
lists, extension metadata (minimum Slicer version), lazy imports and size of the module file."""
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
QT_CLASSES = {"QWidget", "QGroupBox", "QLabel", "QPushButton", "QListWidget", "QComboBox",
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
    from BreastLesionSegLib import panel_state

    source = MODULE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"self\.ui\.([A-Za-z_][A-Za-z0-9_]*)", source))
    used |= {f"{name}Button" for name in re.findall(r'\("([A-Za-z]+)", (?:self\.on|lambda)', source)}
    used |= {f"{name}CollapsibleButton" for name in ("inputs", "model", "options", "run", "results", "training")}
    state = panel_state.panel_state("DCE-MRI", "Volumes", True, True, "", False, False)
    used |= set(state.visible()) | set(state.enabled())
    assert len(used) > 30
    missing = sorted(used - set(_ui_widgets()))
    assert not missing, f"widgets used by the panel but absent from the .ui: {missing}"


def _wrapper_fields() -> dict[str, str]:
    """Field name -> annotation source of the @parameterNodeWrapper / @parameterPack classes (read with ast:
    slicer.parameterNodeWrapper is not in the slicer-core wheel)."""
    tree = ast.parse((MODULE_DIR / "BreastLesionSegLib" / "parameter_node.py").read_text(encoding="utf-8"))
    fields: dict[str, str] = {}
    for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
        prefix = "result." if cls.name == "ResultReferences" else ""
        for item in cls.body:
            if isinstance(item, ast.AnnAssign):
                fields[prefix + item.target.id] = ast.unparse(item.annotation)
    return fields


def test_parameter_node_wrapper_matches_the_settings_and_the_ui():
    """The wrapper has every plain setting (same name), and every .ui binding names a wrapper field."""
    import dataclasses

    from BreastLesionSegLib.settings import SegmentationSettings

    fields = _wrapper_fields()
    settings_fields = {f.name for f in dataclasses.fields(SegmentationSettings)}
    assert settings_fields <= set(fields), sorted(settings_fields - set(fields))
    root = ET.parse(UI_FILE).getroot()
    bound = {w.get("name"): p.findtext("string") for w in root.iter("widget") for p in w.findall("property")
             if p.get("name") == "SlicerParameterName"}
    assert len(bound) >= 15
    assert set(bound.values()) <= set(fields), sorted(set(bound.values()) - set(fields))
    # widgets connectGui can bind for their field's type (Slicer's guiConnectors)
    kinds = {"QCheckBox": "bool", "ctkDirectoryButton": "Path", "QLineEdit": "str", "QSpinBox": "int",
             "QDoubleSpinBox": "float", "ctkSliderWidget": "float", "QComboBox": "Choice", "qMRMLNodeComboBox": "vtkMRML"}
    classes = _ui_widgets()
    for widget, field in bound.items():
        assert kinds[classes[widget]] in fields[field], f"{widget} ({classes[widget]}) cannot show {fields[field]}"
    assert "model" not in bound.values()  # the model list is dynamic: filled by the panel, stored by id


def _cmake_list(text: str, var: str) -> list[str]:
    m = re.search(rf"set\({var}\s+(.*?)\)", text, re.S)
    assert m, f"{var} not set"
    return [t.replace("${MODULE_NAME}", "BreastLesionSeg") for t in m.group(1).split() if not t.startswith("#")]


def test_every_script_and_resource_is_listed_in_the_module_cmake():
    text = MODULE_CMAKE.read_text(encoding="utf-8")
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
    text = TOP_CMAKE.read_text(encoding="utf-8")
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


def test_minimum_slicer_version_is_declared_and_checked():
    """Issue 15 bug 4: vtkSegment.SetTerminology needs Slicer 5.10; declared in the extension and checked at load."""
    from BreastLesionSegLib.settings import MINIMUM_SLICER_VERSION, slicer_version_error

    text = TOP_CMAKE.read_text(encoding="utf-8")
    declared = re.search(r'set\(BREASTLESIONSEG_MINIMUM_SLICER_VERSION "([0-9.]+)"\)', text)
    assert declared and tuple(int(v) for v in declared.group(1).split(".")) == MINIMUM_SLICER_VERSION
    assert re.search(r"if\(Slicer_VERSION VERSION_LESS BREASTLESIONSEG_MINIMUM_SLICER_VERSION\)\s+message\(FATAL_ERROR", text)
    assert "${BREASTLESIONSEG_MINIMUM_SLICER_VERSION}" in re.search(r'EXTENSION_DESCRIPTION "([^"]*)"', text).group(1)
    message = slicer_version_error(5, 8)
    assert "5.10" in message and "5.8" in message and "SetTerminology" in message
    assert slicer_version_error(5, 10) is None and slicer_version_error(6, 0) is None
    assert "slicer_version_error(slicer.app.majorVersion, slicer.app.minorVersion)" in MODULE_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("icon", [MODULE_DIR / "Resources" / "Icons" / "BreastLesionSeg.png",
                                  ROOT / "Resources" / "Icons" / "BreastLesionSeg.png"])
def test_icons_are_128_pixel_pngs(icon):
    import matplotlib.image as mpimg

    assert mpimg.imread(icon).shape[:2] == (128, 128)


def test_module_file_is_thin_and_imports_only_the_checks_at_load_time():
    source = MODULE_FILE.read_text(encoding="utf-8")
    tree = ast.parse(source)
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    lib = [n.module for n in top if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("BreastLesionSeg")]
    # light modules only (no torch / MONAI / slicerio): the module loads and explains itself without them
    assert lib == ["BreastLesionSegLib", "BreastLesionSegLib.dependencies", "BreastLesionSegLib.panel_binding",
                   "BreastLesionSegLib.settings"]
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes == {"BreastLesionSeg", "BreastLesionSegLogic", "BreastLesionSegWidget", "BreastLesionSegTest"}
    assert len(source.splitlines()) < 270  # every decision lives in BreastLesionSegLib
    compile(source, str(MODULE_FILE), "exec")


def test_one_class_per_name_across_the_module_and_its_library():
    names = [n.name for f in [MODULE_FILE, *sorted((MODULE_DIR / "BreastLesionSegLib").glob("*.py"))]
             for n in ast.parse(f.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_dependency_check_works_without_torch_monai_scipy():
    """Slicer without the packages: the check must import and name them (the module explains itself)."""
    code = (
        "import sys\n"
        "for name in ('torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib'): sys.modules[name] = None\n"
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "blocked = {'torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib'}\n"
        "from BreastLesionSegLib import dependencies as d, settings, panel_binding, panel_views\n"
        "missing = d.missing_requirements(find_spec=lambda n: None if n in blocked else real(n))\n"
        "plan = d.install_plan(missing)\n"
        "print([r.import_name for r in missing]); print(plan.torch_via_extension); print(plan.pip_specs)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=MODULE_DIR, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['torch', 'monai', 'scipy', 'slicerio', 'nrrd', 'matplotlib']"
    assert lines[1] == "True" and "monai==1.6.1" in lines[2] and "torch" not in lines[2]


def test_everything_the_widget_calls_exists_in_the_logic_package(ctx):
    """The widget cannot run here, so check statically that its calls into BreastLesionSegLib resolve."""
    import importlib

    from BreastLesionSegLib import panel_views
    from BreastLesionSegLib.logic import SceneLogic
    from BreastLesionSegLib.panel_actions import PanelActions
    from BreastLesionSegLib.panel_binding import ParameterNodeBinding

    source = MODULE_FILE.read_text(encoding="utf-8")
    actions = PanelActions(SceneLogic(ctx))
    for owner, obj in ((r"self\.actions\.logic", actions.logic), (r"self\.actions\.runs", actions.runs),
                       (r"self\.actions", actions), (r"self\._binding", ParameterNodeBinding(print, print)),
                       (r"(?<![.\w])views", panel_views)):
        for attr in sorted(set(re.findall(rf"{owner}\.([A-Za-z_]+)", source)) - {"logic", "runs"}):
            assert hasattr(obj, attr), f"{owner} has no '{attr}'"
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("BreastLesionSegLib",
                                                                                        "breastlesionseg")):
            if node.module == "BreastLesionSegLib.parameter_node":
                continue  # needs slicer.parameterNodeWrapper (Slicer application only)
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no '{alias.name}'"


def test_the_tests_panel_values_have_the_wrappers_fields(panel_values):
    """Testing/Python/slicer/conftest.py's plain panel values stand for the wrapper: same field names."""
    import dataclasses

    fields = {k for k in _wrapper_fields() if not k.startswith("result.")}
    assert {f.name for f in dataclasses.fields(panel_values)} == fields
    assert {f"result.{f.name}" for f in dataclasses.fields(panel_values().result)} == {
        k for k in _wrapper_fields() if k.startswith("result.")}


def test_the_widgets_calls_match_the_signatures(ctx):
    """Each call the widget makes into the library binds to the callee's signature (arguments checked
    statically: the widget cannot run here)."""
    import inspect

    from BreastLesionSegLib import panel_views
    from BreastLesionSegLib.logic import SceneLogic
    from BreastLesionSegLib.panel_actions import PanelActions

    actions = PanelActions(SceneLogic(ctx))
    owners = {"views": panel_views, "self.actions": actions, "self.actions.logic": actions.logic,
              "self.actions.runs": actions.runs}
    checked = 0
    for call in ast.walk(ast.parse(MODULE_FILE.read_text(encoding="utf-8"))):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        owner = ast.unparse(call.func.value)
        if owner not in owners:
            continue
        function = getattr(owners[owner], call.func.attr)
        placeholders = [object()] * len(call.args)
        inspect.signature(function).bind(*placeholders, **{k.arg: object() for k in call.keywords})
        checked += 1
    assert checked >= 15
