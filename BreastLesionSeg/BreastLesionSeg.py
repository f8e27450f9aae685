"""BreastLesionSeg: one click from a breast DCE-MRI exam to editable breast and lesion segments.

Thin Slicer module file: the module description, the panel (widget) that forwards user actions to
``BreastLesionSegLib`` and shows the results, and the self-test. Every decision (input assignment,
what is missing, the CLI command, result nodes, replace rules, metrics, training export) is made in
``BreastLesionSegLib``, which is tested with real MRML outside Slicer.

Only ``BreastLesionSegLib.dependencies`` is imported at load time, so the module loads and explains
itself even when PyTorch / MONAI are not installed yet.
"""
from __future__ import annotations

import logging
import os

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

from BreastLesionSegLib.dependencies import install_plan, missing_requirements

POLL_INTERVAL_MS = 200


class BreastLesionSeg(ScriptedLoadableModule):
    """Module description shown by Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Breast Lesion Segmentation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["BreastLesionSeg developers"]
        self.parent.helpText = (
            "Segments the breasts (left/right) and the enhancing lesions of a breast DCE-MRI exam with an "
            "MM-3DUNet model, as editable segments with a lesion table (volume, diameters, enhancement, kinetic "
            "curve type, FTV) and kinetic curves. Edit the segments, press 'Update metrics', add corrected cases "
            "to a training set and fine-tune the model locally. Research use only: not a medical device. "
            "See the <a href='https://github.com/breastlesionseg/BreastLesionSeg/blob/main/docs/slicer_module.md'>"
            "module documentation</a>."
        )
        self.parent.acknowledgementText = (
            "Method after MM-3DUNet (multi-modal 3D U-Net with CEC units and an ACT head) for breast DCE-MRI. "
            "Uses MONAI, PyTorch, SimpleITK and slicerio."
        )


class BreastLesionSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: forwards actions to BreastLesionSegLogic, polls out-of-process runs, shows results."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._updatingGUI = False
        self._job = None
        self._jobInputs = None
        self._replaceTarget = None
        self._trainingRun = None
        self._trainingOutput = None
        self._trainingPlot = None
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._onPoll)

    # -- setup -----------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/BreastLesionSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.autoAssignButton.connect("clicked(bool)", self.onAutoAssign)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.updateMetricsButton.connect("clicked(bool)", self.onUpdateMetrics)
        self.ui.editSegmentsButton.connect("clicked(bool)", self.onEditSegments)
        self.ui.jumpToLesionButton.connect("clicked(bool)", self.onJumpToLesion)
        self.ui.addToTrainingButton.connect("clicked(bool)", self.onAddToTraining)
        self.ui.trainButton.connect("clicked(bool)", self.onTrain)
        self.ui.cancelTrainingButton.connect("clicked(bool)", self.onCancelTraining)
        self.ui.addModelFolderButton.connect("clicked(bool)", self.onAddModelFolder)
        for widget, signal in (
            (self.ui.inputModeVolumesRadioButton, "toggled(bool)"),
            (self.ui.preVolumeSelector, "currentNodeChanged(vtkMRMLNode*)"),
            (self.ui.sequenceSelector, "currentNodeChanged(vtkMRMLNode*)"),
            (self.ui.postVolumesListWidget, "itemChanged(QListWidgetItem*)"),
            (self.ui.modelComboBox, "currentIndexChanged(int)"),
            (self.ui.deviceComboBox, "currentIndexChanged(int)"),
            (self.ui.breastMaskingCheckBox, "toggled(bool)"),
            (self.ui.thresholdSliderWidget, "valueChanged(double)"),
            (self.ui.minLesionVolumeSpinBox, "valueChanged(double)"),
            (self.ui.probabilityCheckBox, "toggled(bool)"),
            (self.ui.heatmapCheckBox, "toggled(bool)"),
            (self.ui.segmentationSelector, "currentNodeChanged(vtkMRMLNode*)"),
            (self.ui.datasetDirButton, "directoryChanged(QString)"),
            (self.ui.trainingOutputDirButton, "directoryChanged(QString)"),
            (self.ui.epochsSpinBox, "valueChanged(int)"),
            (self.ui.fineTuneCheckBox, "toggled(bool)"),
            (self.ui.correctedByLineEdit, "editingFinished()"),
        ):
            widget.connect(signal, self.updateParameterNodeFromGUI)
        self.ui.postVolumesListWidget.model().connect("rowsMoved(QModelIndex,int,int,QModelIndex,int)",
                                                      self.updateParameterNodeFromGUI)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        if self._checkDependencies():
            self._initializeLogic()

    def cleanup(self):
        self._timer.stop()
        if self._job is not None:
            self._job.run.cancel()
        if self._trainingRun is not None:
            self._trainingRun.cancel()
        self.removeObservers()

    def enter(self):
        if self.logic is not None:
            self.initializeParameterNode()

    def exit(self):
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event):
        self.exit()
        self._parameterNode = None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered and self.logic is not None:
            self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node):
        if self.logic is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, self.updateGUIFromParameterNode)  # list the new volume

    # -- dependencies ----------------------------------------------------------------------------
    def _checkDependencies(self):
        plan = install_plan(missing_requirements())
        self.ui.dependencyGroupBox.setVisible(plan.needed)
        self.ui.dependencyLabel.setText(plan.message())
        for box in (self.ui.inputsCollapsibleButton, self.ui.modelCollapsibleButton, self.ui.optionsCollapsibleButton,
                    self.ui.runCollapsibleButton, self.ui.resultsCollapsibleButton, self.ui.trainingCollapsibleButton):
            box.setEnabled(not plan.needed)
        return not plan.needed

    def onInstallDependencies(self):
        from BreastLesionSegLib.dependencies import install

        try:
            import PyTorchUtils

            torchLogicFactory = PyTorchUtils.PyTorchUtilsLogic
        except ModuleNotFoundError:
            torchLogicFactory = None
        with slicer.util.tryWithErrorDisplay("Installing the Python packages failed.", waitCursor=True):
            install(install_plan(missing_requirements()), confirm=slicer.util.confirmOkCancelDisplay,
                    pip_install=slicer.util.pip_install, pytorch_utils_logic=torchLogicFactory)
        if self._checkDependencies() and self.logic is None:
            self._initializeLogic()

    def _initializeLogic(self):
        from BreastLesionSegLib.devices import DEVICE_CHOICES, device_description, gpu_names
        from BreastLesionSegLib.logic import BreastLesionSegLogic
        from BreastLesionSegLib.mrml_context import context_from_slicer_application

        workDir = os.path.join(slicer.app.temporaryPath, "BreastLesionSeg")
        self.logic = BreastLesionSegLogic(context_from_slicer_application(), work_dir=workDir)
        self.ui.deviceComboBox.clear()
        for value, text in DEVICE_CHOICES:
            self.ui.deviceComboBox.addItem(text, value)
        self.ui.gpuNameLabel.setText(device_description(gpu_names()))
        self.initializeParameterNode()

    # -- parameter node <-> GUI -----------------------------------------------------------------
    def initializeParameterNode(self):
        from BreastLesionSegLib import parameters as P

        node = self.logic.parameter_node
        if node is not self._parameterNode:
            if self._parameterNode is not None:
                self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
            self._parameterNode = node
            self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        if P.node_reference(node, P.ROLE_PRE) is None:
            self.onAutoAssign()
        self.updateGUIFromParameterNode()

    def _settingsOrError(self):
        from breastlesionseg.errors import InputError

        try:
            return self.logic.settings()
        except InputError as exc:
            self.ui.statusLabel.setText(f"Saved settings are invalid ({exc}); defaults are used.")
            from BreastLesionSegLib.parameters import SegmentationSettings

            return SegmentationSettings()

    def updateGUIFromParameterNode(self, caller=None, event=None):
        from BreastLesionSegLib import parameters as P
        from BreastLesionSegLib.models import list_models

        if self._parameterNode is None or self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            pnode = self._parameterNode
            settings = self._settingsOrError()
            sequenceMode = settings.input_mode == "sequence"
            self.ui.inputModeVolumesRadioButton.checked = not sequenceMode
            self.ui.inputModeSequenceRadioButton.checked = sequenceMode
            for w in (self.ui.preVolumeSelector, self.ui.postVolumesListWidget, self.ui.autoAssignButton):
                w.setEnabled(not sequenceMode)
            self.ui.sequenceSelector.setEnabled(sequenceMode)
            self.ui.preVolumeSelector.setCurrentNode(P.node_reference(pnode, P.ROLE_PRE))
            self.ui.sequenceSelector.setCurrentNode(P.node_reference(pnode, P.ROLE_SEQUENCE))
            self._fillPostList(P.node_references(pnode, P.ROLE_POST), P.node_reference(pnode, P.ROLE_PRE))
            self.ui.modelComboBox.clear()
            models = list_models(settings.user_model_dirs)
            current = -1
            for k, info in enumerate(models):
                self.ui.modelComboBox.addItem(info.model_id + (" [demo]" if info.demo else ""), str(info.folder))
                if settings.model in (info.model_id, str(info.folder)):
                    current = k
            self.ui.modelComboBox.setCurrentIndex(current)
            self.ui.modelCardLabel.setText(models[current].summary() if current >= 0 else
                                           f"Model '{settings.model}' not found: add its folder.")
            self.ui.deviceComboBox.setCurrentIndex(max(0, self.ui.deviceComboBox.findData(settings.device)))
            self.ui.breastMaskingCheckBox.checked = settings.breast_masking
            self.ui.thresholdSliderWidget.value = settings.threshold
            self.ui.minLesionVolumeSpinBox.value = settings.min_lesion_volume_mm3
            self.ui.probabilityCheckBox.checked = settings.save_probability
            self.ui.heatmapCheckBox.checked = settings.save_heatmap
            self.ui.segmentationSelector.setCurrentNode(P.node_reference(pnode, P.ROLE_SEGMENTATION))
            self.ui.lesionTableView.setMRMLTableNode(P.node_reference(pnode, P.ROLE_TABLE))
            self.ui.datasetDirButton.directory = settings.dataset_dir
            self.ui.trainingOutputDirButton.directory = settings.training_output_dir
            self.ui.epochsSpinBox.value = settings.training_epochs
            self.ui.fineTuneCheckBox.checked = settings.fine_tune
            self.ui.correctedByLineEdit.text = settings.corrected_by
            running = self._job is not None
            self.ui.applyButton.enabled = not running and current >= 0
            self.ui.cancelButton.enabled = running
            haveResult = P.node_reference(pnode, P.ROLE_SEGMENTATION) is not None
            for w in (self.ui.updateMetricsButton, self.ui.editSegmentsButton, self.ui.jumpToLesionButton,
                      self.ui.addToTrainingButton):
                w.enabled = haveResult and not running
            self.ui.trainButton.enabled = self._trainingRun is None and bool(settings.dataset_dir)
            self.ui.cancelTrainingButton.enabled = self._trainingRun is not None
        finally:
            self._updatingGUI = False

    def _fillPostList(self, postNodes, preNode):
        """All scalar volumes: the selected post volumes first (checked, in order), then the others."""
        listWidget = self.ui.postVolumesListWidget
        listWidget.clear()
        selectedIds = [n.GetID() for n in postNodes]
        candidates = [slicer.mrmlScene.GetNodeByID(c.node_id) for c in self.logic.volume_candidates()]
        others = [n for n in candidates if n.GetID() not in selectedIds and n is not preNode]
        for node in list(postNodes) + others:
            item = qt.QListWidgetItem(node.GetName())
            item.setData(qt.Qt.UserRole, node.GetID())
            item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsDragEnabled)
            item.setCheckState(qt.Qt.Checked if node.GetID() in selectedIds else qt.Qt.Unchecked)
            listWidget.addItem(item)

    def updateParameterNodeFromGUI(self, *args):
        from breastlesionseg.errors import InputError
        from BreastLesionSegLib import parameters as P

        if self._parameterNode is None or self._updatingGUI or self.logic is None:
            return
        settings = self._settingsOrError()
        settings.input_mode = "sequence" if self.ui.inputModeSequenceRadioButton.checked else "volumes"
        chosenModel = None
        if self.ui.modelComboBox.currentIndex >= 0:
            chosenModel = self.ui.modelComboBox.itemData(self.ui.modelComboBox.currentIndex)
            if chosenModel == settings.model:
                chosenModel = None
        settings.device = self.ui.deviceComboBox.currentData or "auto"
        settings.breast_masking = self.ui.breastMaskingCheckBox.checked
        settings.threshold = float(self.ui.thresholdSliderWidget.value)
        settings.min_lesion_volume_mm3 = float(self.ui.minLesionVolumeSpinBox.value)
        settings.save_probability = self.ui.probabilityCheckBox.checked
        settings.save_heatmap = self.ui.heatmapCheckBox.checked
        settings.dataset_dir = self.ui.datasetDirButton.directory
        settings.training_output_dir = self.ui.trainingOutputDirButton.directory
        settings.training_epochs = int(self.ui.epochsSpinBox.value)
        settings.fine_tune = self.ui.fineTuneCheckBox.checked
        settings.corrected_by = self.ui.correctedByLineEdit.text
        if chosenModel is not None:  # another model: its card's calibrated threshold / minimum volume
            from BreastLesionSegLib.models import apply_card_defaults, read_model_info

            apply_card_defaults(settings, read_model_info(chosenModel))
        pnode = self._parameterNode
        wasModifying = pnode.StartModify()
        try:
            P.save_settings(pnode, settings)
            P.set_node_reference(pnode, P.ROLE_PRE, self.ui.preVolumeSelector.currentNode())
            P.set_node_reference(pnode, P.ROLE_SEQUENCE, self.ui.sequenceSelector.currentNode())
            listWidget = self.ui.postVolumesListWidget
            posts = [slicer.mrmlScene.GetNodeByID(listWidget.item(i).data(qt.Qt.UserRole))
                     for i in range(listWidget.count) if listWidget.item(i).checkState() == qt.Qt.Checked]
            P.set_node_references(pnode, P.ROLE_POST, posts)
            P.set_node_reference(pnode, P.ROLE_SEGMENTATION, self.ui.segmentationSelector.currentNode())
        except InputError as exc:
            self.ui.statusLabel.setText(str(exc))
        finally:
            pnode.EndModify(wasModifying)

    # -- inputs ----------------------------------------------------------------------------------
    def _acquisitionTime(self, node):
        """DICOM acquisition time (s since midnight) of a volume loaded from DICOM, else None."""
        from BreastLesionSegLib.input_assignment import dicom_time_s

        uids = node.GetAttribute("DICOM.instanceUIDs")
        database = getattr(slicer, "dicomDatabase", None)
        if not uids or database is None:
            return None
        path = database.fileForInstance(uids.split()[0])
        return dicom_time_s(database.fileValue(path, "0008,0032")) if path else None

    def onAutoAssign(self):
        assignment = self.logic.propose_inputs(time_of=self._acquisitionTime)
        excluded = "; ".join(f"{slicer.mrmlScene.GetNodeByID(i).GetName()}: {why}"
                             for i, why in assignment.excluded.items())
        self.ui.assignmentNotesLabel.setText("\n".join(assignment.notes + ([f"Left out: {excluded}"] if excluded else [])))

    def onAddModelFolder(self):
        from BreastLesionSegLib import parameters as P

        folder = qt.QFileDialog.getExistingDirectory(self.parent, "Folder with model folders")
        if not folder:
            return
        settings = self.logic.settings()
        if folder not in settings.user_model_dirs:
            settings.user_model_dirs.append(folder)
        P.save_settings(self._parameterNode, settings)

    # -- segmentation ----------------------------------------------------------------------------
    def onApply(self):
        if self._job is not None:
            return
        with slicer.util.tryWithErrorDisplay("Could not start the segmentation.", waitCursor=True):
            self.updateParameterNodeFromGUI()
            settings = self.logic.settings()
            pre, posts, _ = self.logic.phase_nodes(settings)
            self._replaceTarget = None
            selected = self.ui.segmentationSelector.currentNode()
            if self.ui.replaceCheckBox.checked and selected is not None:
                if not slicer.util.confirmYesNoDisplay(
                        f"Replace the segments of '{selected.GetName()}'? Edits made to it will be lost.\n"
                        "Choose 'No' to keep it and create a new segmentation."):
                    self.ui.replaceCheckBox.checked = False
                else:
                    self._replaceTarget = self.logic.result_for_segmentation(selected)
            self.ui.logTextEdit.clear()
            self._job = self.logic.start_segmentation(pre, posts, settings)
            self._jobInputs = (pre, posts)
            self.ui.progressBar.value = 0
            self.ui.statusLabel.setText("Segmenting in the background...")
            self._timer.start()
            self.updateGUIFromParameterNode()

    def onCancel(self):
        if self._job is not None:
            self._job.run.cancel()
            self.ui.statusLabel.setText("Cancelled: the scene was not changed.")

    def _appendLog(self, update):
        for line in update.log_lines:
            self.ui.logTextEdit.appendPlainText(line)
        for event in update.events:
            self.ui.logTextEdit.appendPlainText(event.message)

    def _onPoll(self):
        if self._job is not None:
            update = self._job.run.poll()
            self._appendLog(update)
            if update.fraction is not None:
                self.ui.progressBar.value = int(round(100 * update.fraction))
            if update.events:
                self.ui.statusLabel.setText(update.events[-1].message)
            if update.state not in ("pending", "running"):
                self._finishSegmentation()
        if self._trainingRun is not None:
            self._pollTraining()
        if self._job is None and self._trainingRun is None:
            self._timer.stop()

    def _finishSegmentation(self):
        job, (pre, posts) = self._job, self._jobInputs
        self._job = None
        if job.run.state == "succeeded":
            with slicer.util.tryWithErrorDisplay("Could not load the results.", waitCursor=True):
                result = self.logic.import_results(job.output_dir, pre, posts, replace=self._replaceTarget,
                                                   confirm_replace=self._replaceTarget is not None)
                self._showResult(result, pre)
                from BreastLesionSegLib.logic import result_summary

                self.ui.statusLabel.setText(f"Done in {job.run.elapsed_s:.0f} s: {result_summary(result.metrics)}")
        elif job.run.state == "cancelled":
            self.ui.statusLabel.setText("Cancelled: the scene was not changed.")
        else:
            self.ui.statusLabel.setText("Segmentation failed.")
            slicer.util.errorDisplay(f"Segmentation failed:\n{job.run.error_message}")
        self._replaceTarget = None
        self.updateGUIFromParameterNode()

    def _showResult(self, result, pre):
        slicer.util.setSliceViewerLayers(background=pre, foreground=result.probability or result.heatmap,
                                         foregroundOpacity=0.4 if (result.probability or result.heatmap) else None)
        result.segmentation.GetDisplayNode().SetVisibility(True)
        self.ui.lesionTableView.setMRMLTableNode(result.table)
        slicer.modules.plots.logic().ShowChartInLayout(result.plot.chart)
        self._jumpTo(result.focus_ras)

    def _jumpTo(self, ras):
        if ras is not None:
            slicer.modules.markups.logic().JumpSlicesToLocation(ras[0], ras[1], ras[2], True)

    def onJumpToLesion(self):
        result = self.logic.result_for_segmentation(self.ui.segmentationSelector.currentNode())
        self._jumpTo(self.logic.focus_of_largest_lesion(result))

    def onEditSegments(self):
        segmentation = self.ui.segmentationSelector.currentNode()
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(segmentation)
        editor.setSourceVolumeNode(self.ui.preVolumeSelector.currentNode())

    def onUpdateMetrics(self):
        with slicer.util.tryWithErrorDisplay("Could not update the metrics.", waitCursor=True):
            pre, posts, times = self.logic.phase_nodes()
            result = self.logic.result_for_segmentation(self.ui.segmentationSelector.currentNode())
            updated = self.logic.update_metrics(result, pre, posts, times)
            self._showResult(updated, pre)
            self.ui.statusLabel.setText(f"Metrics updated: {len(updated.lesion_segment_ids)} lesion(s).")

    # -- training --------------------------------------------------------------------------------
    def onAddToTraining(self):
        with slicer.util.tryWithErrorDisplay("Could not add the case to the training set.", waitCursor=True):
            self.updateParameterNodeFromGUI()
            settings = self.logic.settings()
            pre, posts, _ = self.logic.phase_nodes(settings)
            caseId = self.ui.caseIdLineEdit.text.strip() or self.logic.suggest_case_id(pre)
            folder = self.logic.add_to_training_set(settings.dataset_dir, caseId,
                                                    self.ui.segmentationSelector.currentNode(), pre, posts,
                                                    corrected_by=settings.corrected_by)
            slicer.util.infoDisplay(f"Case '{caseId}' was added to the training set:\n{folder}")

    def onTrain(self):
        with slicer.util.tryWithErrorDisplay("Could not start training.", waitCursor=True):
            self.updateParameterNodeFromGUI()
            self._trainingRun, self._trainingOutput = self.logic.start_training()
            self.ui.trainingProgressBar.value = 0
            self.ui.trainingStatusLabel.setText(f"Training into {self._trainingOutput} ...")
            self._timer.start()
            self.updateGUIFromParameterNode()

    def onCancelTraining(self):
        if self._trainingRun is not None:
            self._trainingRun.cancel()

    def _pollTraining(self):
        from BreastLesionSegLib.logic import training_curve
        from BreastLesionSegLib.plots import update_training_plot

        run = self._trainingRun
        update = run.poll()
        if update.fraction is not None:
            self.ui.trainingProgressBar.value = int(round(100 * update.fraction))
        epochs = [e for e in update.events if e.event == "epoch"]
        if epochs:
            self.ui.trainingStatusLabel.setText(epochs[-1].message)
            self._trainingPlot = update_training_plot(slicer.mrmlScene, training_curve(run.events), self._trainingPlot)
            slicer.modules.plots.logic().ShowChartInLayout(self._trainingPlot.chart)
        if update.state in ("pending", "running"):
            return
        self._trainingRun = None
        if update.state == "succeeded":
            with slicer.util.tryWithErrorDisplay("Training finished but the model could not be registered."):
                info = self.logic.register_model(self._trainingOutput)
                self.ui.trainingStatusLabel.setText(f"New model '{info.model_id}' registered and selected.")
        elif update.state == "cancelled":
            self.ui.trainingStatusLabel.setText("Training stopped.")
        else:
            slicer.util.errorDisplay(f"Training failed:\n{run.error_message}")
        self.updateGUIFromParameterNode()


class BreastLesionSegLogic(ScriptedLoadableModuleLogic):
    """Slicer-side entry point for scripts: ``BreastLesionSegLogic().logic`` is the real logic."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        from BreastLesionSegLib.logic import BreastLesionSegLogic as Logic
        from BreastLesionSegLib.mrml_context import context_from_slicer_application

        self.logic = Logic(context_from_slicer_application(),
                           work_dir=os.path.join(slicer.app.temporaryPath, "BreastLesionSeg"))


class BreastLesionSegTest(ScriptedLoadableModuleTest):
    """Self-test: the real pipeline on a phantom exam with the shipped model (not skipped)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_BreastLesionSeg_phantom_end_to_end()

    def test_BreastLesionSeg_phantom_end_to_end(self):
        self.delayDisplay("Checking the Python packages")
        missing = missing_requirements()
        self.assertEqual(missing, [], install_plan(missing).message())
        from BreastLesionSegLib.mrml_context import context_from_slicer_application
        from BreastLesionSegLib.selftest import SelfTestConfig, run_self_test

        self.delayDisplay("Segmenting a phantom exam with the shipped model")
        report = run_self_test(context_from_slicer_application(),
                               work_dir=os.path.join(slicer.app.temporaryPath, "BreastLesionSegSelfTest"),
                               config=SelfTestConfig())
        logging.info("BreastLesionSeg self-test: %s", report)
        self.assertGreaterEqual(report.n_found_lesions, 1)
        self.assertEqual(report.table_rows, report.n_found_lesions + 1)
        self.delayDisplay(f"Test passed: lesion Dice {report.lesion_dice:.2f}, breast Dice {report.breast_dice:.2f}")
