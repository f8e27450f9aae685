"""BreastLesionSeg: one click from a breast DCE-MRI exam to editable breast and lesion segments.

Thin Slicer module file: the module description, the panel on Slicer's parameter-node wrapper
(``BreastLesionSegLib.parameter_node``, bound to the .ui with ``connectGui``) and the self-test. Every
decision (inputs, phases, model defaults, enabled buttons, results, training) is made in
``BreastLesionSegLib``, which is tested with real MRML outside Slicer. At load time only the version
and dependency checks are imported, so the module explains itself before PyTorch / MONAI are installed.
"""
from __future__ import annotations

import logging

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from BreastLesionSegLib import panel_views as views
from BreastLesionSegLib.dependencies import self_test_skip_reason
from BreastLesionSegLib.panel_binding import ParameterNodeBinding
from BreastLesionSegLib.settings import slicer_version_error


class BreastLesionSeg(ScriptedLoadableModule):
    """Module description shown by Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Breast Lesion Segmentation"
        self.parent.categories = ["Segmentation"]
        self.parent.contributors = ["BreastLesionSeg developers"]
        self.parent.helpText = (
            "Breast and lesion segments, a lesion table and kinetic curves from a breast DCE-MRI exam, editable; "
            "corrected cases become a training set. Research use only. <a href='https://github.com/breastlesionseg/"
            "BreastLesionSeg/blob/main/docs/slicer_module.md'>Documentation</a>.")
        self.parent.acknowledgementText = "Uses MONAI, PyTorch, SimpleITK and slicerio."
        self.versionProblem = slicer_version_error(slicer.app.majorVersion, slicer.app.minorVersion)
        if self.versionProblem:
            logging.error(self.versionProblem)
            self.parent.helpText = f"<b>{self.versionProblem}</b><br>" + self.parent.helpText


class BreastLesionSegLogic(ScriptedLoadableModuleLogic):
    """Owns the module's typed parameter node; the work is done by ``BreastLesionSegLib.logic.SceneLogic``."""

    def getParameterNode(self):
        from BreastLesionSegLib.parameter_node import BreastLesionSegParameterNode

        return BreastLesionSegParameterNode(super().getParameterNode())


class BreastLesionSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds the parameter node to the .ui (connectGui); buttons call ``PanelActions``."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = self.actions = self._trainingPlot = None
        self._binding = ParameterNodeBinding(self._connect, self._disconnect)
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.connect("timeout()", self._onPoll)

    @property
    def _parameterNode(self):
        return self._binding.node

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/BreastLesionSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        for button, slot in (("installDependencies", self.onInstallDependencies), ("autoAssign", self.onAutoAssign),
                             ("apply", self.onApply), ("cancel", lambda: self.actions.runs.cancel("segmentation")),
                             ("updateMetrics", self.onUpdateMetrics), ("editSegments", self.onEditSegments),
                             ("jumpToLesion", self.onJumpToLesion), ("addToTraining", self.onAddToTraining),
                             ("train", self.onTrain), ("cancelTraining", lambda: self.actions.runs.cancel("training")),
                             ("addModelFolder", self.onAddModelFolder)):
            getattr(self.ui, f"{button}Button").connect("clicked(bool)", slot)
        self.ui.modelComboBox.connect("activated(int)", self._onModelChosen)
        self.ui.postVolumesListWidget.connect("itemChanged(QListWidgetItem*)", self._onPostListChanged)
        self.ui.postVolumesListWidget.model().connect("rowsMoved(QModelIndex,int,int,QModelIndex,int)",
                                                      self._onPostListChanged)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, lambda *a: self._binding.forget())
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, lambda *a: self._refreshPostList())
        versionProblem = slicer_version_error(slicer.app.majorVersion, slicer.app.minorVersion)
        self._checkDependencies(versionProblem)
        if not versionProblem:
            self.logic = BreastLesionSegLogic()
            self.initializeParameterNode()

    def cleanup(self):
        self._timer.stop()
        if self.actions is not None:
            self.actions.runs.cancel()
        self._binding.forget()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self._binding.release()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.logic is not None:
            self._binding.follow(self.logic.getParameterNode())
            p = self._parameterNode
            if self.actions is not None and p.pre_volume is None and p.sequence is None:
                self.onAutoAssign()

    def _connect(self, node):
        tag = node.connectGui(self.ui)
        self.addObserver(node.parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._onParameterNodeModified()
        return tag

    def _disconnect(self, node, tag):
        node.disconnectGui(tag)
        self.removeObserver(node.parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def _checkDependencies(self, versionProblem=None):
        if views.show_dependency_state(self.ui, versionProblem) and self.actions is None:
            self.actions = views.panel_actions_in_slicer()

    def onInstallDependencies(self):
        with slicer.util.tryWithErrorDisplay("Installing the Python packages failed.", waitCursor=True):
            views.install_dependencies_in_slicer()
        self._checkDependencies()
        self.initializeParameterNode()

    # -- parameter node <-> the parts of the panel connectGui cannot bind --------------------------
    def _onParameterNodeModified(self, caller=None, event=None):
        p = self._parameterNode
        if p is None or self.actions is None:
            return
        with slicer.util.NodeModify(p.parameterNode):
            state, entries, index = self.actions.state(p)
        views.fill_model_selector(self.ui.modelComboBox, entries, index)
        views.apply_panel_state(self.ui, state)
        self.ui.lesionTableView.setMRMLTableNode(p.result.table)
        self._refreshPostList()

    def _refreshPostList(self):
        qt.QTimer.singleShot(0, self._fillPostList)  # later: never inside the list's own itemChanged signal

    def _fillPostList(self):
        if self._binding.connected and self.actions is not None:
            views.fill_post_list(self.ui.postVolumesListWidget, self.actions.post_list_rows(self._parameterNode))

    def _onPostListChanged(self, *args):
        if self._binding.connected:
            nodes = [slicer.mrmlScene.GetNodeByID(i) for i in views.checked_post_ids(self.ui.postVolumesListWidget)]
            self._parameterNode.post_volumes = [n for n in nodes if n is not None]

    def _onModelChosen(self, index):
        self.actions.choose_model(self._parameterNode, self.ui.modelComboBox.itemData(index))

    def onAddModelFolder(self):
        folder = qt.QFileDialog.getExistingDirectory(self.parent, "Folder with model folders")
        if folder and folder not in self._parameterNode.user_model_folders:
            self._parameterNode.user_model_folders.append(folder)

    def onAutoAssign(self):
        with slicer.util.NodeModify(self._parameterNode.parameterNode):
            notes = self.actions.auto_assign(self._parameterNode, getattr(slicer, "dicomDatabase", None))
        self.ui.assignmentNotesLabel.setText(notes)

    # -- actions ---------------------------------------------------------------------------------
    def onApply(self):
        with slicer.util.tryWithErrorDisplay("Could not start the segmentation.", waitCursor=True):
            selected, replace = self._parameterNode.result.segmentation, None
            if self.ui.replaceCheckBox.checked and selected is not None and slicer.util.confirmYesNoDisplay(
                    f"Replace the segments of '{selected.GetName()}'? Edits made to it will be lost."):
                replace = selected
            self.ui.logTextEdit.clear()
            self.actions.apply(self._parameterNode, replace)
            self.ui.statusLabel.setText("Segmenting in the background...")
            self._timer.start()
            self._onParameterNodeModified()

    def _onPoll(self):
        out = self.actions.poll(self._parameterNode)
        for line in out.log_lines:
            self.ui.logTextEdit.appendPlainText(line)
        for bar, fraction in ((self.ui.progressBar, out.segmentation_fraction),
                              (self.ui.trainingProgressBar, out.training_fraction)):
            if fraction is not None:
                bar.value = int(round(100 * fraction))
        if out.new_epoch:
            self._trainingPlot = views.show_training_curve(self.actions.runs.training[0].events, self._trainingPlot)
        for label, text in ((self.ui.statusLabel, out.status), (self.ui.trainingStatusLabel, out.training_status)):
            if text:
                label.setText(text)
        if out.shown is not None:
            self._show(*out.shown)
        if out.error:
            slicer.util.errorDisplay(out.error)
        if not self.actions.runs.busy:
            self._timer.stop()
        if out.finished:
            self._onParameterNodeModified()

    def _show(self, result, selection):
        views.show_result(result, selection, self.actions.logic.ctx)

    def onJumpToLesion(self):
        views.jump_to(self.actions.logic.focus_of_largest_lesion(self.actions.current_result(self._parameterNode)))

    def onEditSegments(self):
        p = self._parameterNode
        views.edit_in_segment_editor(p.result.segmentation, self.actions.selection(p).display_node)

    def onUpdateMetrics(self):
        with slicer.util.tryWithErrorDisplay("Could not update the metrics.", waitCursor=True):
            self._show(*self.actions.update_metrics(self._parameterNode))

    def onAddToTraining(self):
        with slicer.util.tryWithErrorDisplay("Could not add the case to the training set.", waitCursor=True):
            folder = self.actions.add_to_training_set(self._parameterNode, self.ui.caseIdLineEdit.text.strip())
            slicer.util.infoDisplay(f"The case was added to the training set:\n{folder}")
            self._onParameterNodeModified()

    def onTrain(self):
        with slicer.util.tryWithErrorDisplay("Could not start training.", waitCursor=True):
            output = self.actions.train(self._parameterNode)
            self.ui.trainingStatusLabel.setText(f"Training into {output} ...")
            self._timer.start()
            self._onParameterNodeModified()


class BreastLesionSegTest(ScriptedLoadableModuleTest):
    """Self-test: the real pipeline on a phantom exam with the shipped model; skipped without the packages."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_BreastLesionSeg_phantom_end_to_end()

    def test_BreastLesionSeg_phantom_end_to_end(self):
        reason = self_test_skip_reason()
        if reason:
            self.skipTest(reason)
        from BreastLesionSegLib.selftest import run_self_test_in_slicer

        self.delayDisplay("Segmenting a phantom exam with the shipped model")
        report = run_self_test_in_slicer()
        self.assertGreaterEqual(report.n_found_lesions, 1)
        self.assertEqual(report.table_rows, report.n_found_lesions + 1)
        self.delayDisplay(f"Test passed: lesion Dice {report.lesion_dice:.2f}, breast Dice {report.breast_dice:.2f}")
