"""Training report: curves (Wang et al. 2025 Figs 7-8: loss and IoU per epoch), time, energy and carbon footprint.

Carbon footprint as in Narimani et al. (Eq. 9): ``CFP [kg CO2] = 0.475 kg/kWh x energy [kWh]``
(IEA 2019 world average, 475 g CO2 per kWh). Narimani et al. assumed about 1 kW for its whole training
workstation; we report that figure too, but our own estimate measures what this run used:

* CPU: process CPU time (user + system, all ranks) x (CPU package power / logical cores). The package
  power defaults to 65 W (a typical desktop/server TDP) and can be set with ``BLS_CPU_TDP_W``;
  on a shared machine only this run's CPU seconds are counted.
* GPU: the mean board power read with ``nvidia-smi --query-gpu=power.draw`` during training x wall time,
  when CUDA is used and ``nvidia-smi`` exists; otherwise ``BLS_GPU_POWER_W`` (default 250 W) is assumed.
* Memory, disks, cooling and power-supply losses are not counted (an underestimate).
"""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import write_atomic, write_text_atomic

log = logging.getLogger(__name__)

#: kg CO2 per kWh (Narimani et al., Eq. 9; IEA Global Energy & CO2 Status Report 2019)
CO2_KG_PER_KWH = 0.475
#: Narimani et al.'s whole-workstation power assumption (about 1 kWh per training hour)
WORKSTATION_POWER_W = 1000.0
DEFAULT_CPU_TDP_W = 65.0
DEFAULT_GPU_POWER_W = 250.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


def read_gpu_power_w() -> float | None:
    """Current total board power of the visible NVIDIA GPUs in W via ``nvidia-smi``, or None."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=power.draw", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=5, check=True).stdout
        values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return sum(values) if values else None


@dataclass
class EnergyMeter:
    """Measures wall time, CPU time and (sampled) GPU power of a training run.

    Args:
        use_gpu: the run uses CUDA.
        cpu_tdp_w: CPU package power in W (default ``BLS_CPU_TDP_W`` or 65 W).
        logical_cores: logical cores sharing that power (default ``os.cpu_count()``).
    """

    use_gpu: bool = False
    cpu_tdp_w: float = field(default_factory=lambda: float(os.environ.get("BLS_CPU_TDP_W", DEFAULT_CPU_TDP_W)))
    logical_cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    _t0: float = 0.0
    _cpu0: float = 0.0
    _gpu_samples: list[float] = field(default_factory=list)

    def start(self, elapsed_before_s: float = 0.0, cpu_before_s: float = 0.0) -> None:
        """Start measuring (``*_before_s``: what a resumed run had already used)."""
        self._t0 = time.monotonic() - elapsed_before_s
        self._cpu0 = _cpu_seconds() - cpu_before_s
        self.sample()

    def sample(self) -> None:
        """Record the GPU power now (call once per epoch)."""
        if self.use_gpu:
            p = read_gpu_power_w()
            if p is not None:
                self._gpu_samples.append(p)

    @property
    def wall_s(self) -> float:
        """Wall time so far in s."""
        return time.monotonic() - self._t0

    @property
    def cpu_s(self) -> float:
        """CPU time of this process so far in s."""
        return _cpu_seconds() - self._cpu0

    def summary(self, cpu_s_all_ranks: float | None = None, n_gpus: int = 0) -> dict[str, Any]:
        """Energy and carbon footprint so far, with the assumptions (JSON-ready)."""
        wall = self.wall_s
        cpu_s = self.cpu_s if cpu_s_all_ranks is None else cpu_s_all_ranks
        cpu_w_per_core = self.cpu_tdp_w / max(self.logical_cores, 1)
        cpu_kwh = cpu_s * cpu_w_per_core / 3.6e6
        gpu_power, gpu_source = 0.0, "no GPU used"
        if self.use_gpu:
            if self._gpu_samples:
                gpu_power, gpu_source = sum(self._gpu_samples) / len(self._gpu_samples), "nvidia-smi power.draw (mean)"
            else:
                gpu_power = float(os.environ.get("BLS_GPU_POWER_W", DEFAULT_GPU_POWER_W)) * max(n_gpus, 1)
                gpu_source = "assumed (BLS_GPU_POWER_W or 250 W per GPU)"
        gpu_kwh = gpu_power * wall / 3.6e6
        energy = cpu_kwh + gpu_kwh
        workstation_kwh = WORKSTATION_POWER_W * wall / 3.6e6
        return {
            "training_time_s": wall,
            "cpu_time_s": cpu_s,
            "energy_kwh": energy,
            "cpu_energy_kwh": cpu_kwh,
            "gpu_energy_kwh": gpu_kwh,
            "carbon_footprint_kg_co2": CO2_KG_PER_KWH * energy,
            "carbon_footprint_1kw_workstation_kg_co2": CO2_KG_PER_KWH * workstation_kwh,
            "assumptions": {
                "co2_kg_per_kwh": CO2_KG_PER_KWH,
                "cpu_package_power_w": self.cpu_tdp_w,
                "logical_cores": self.logical_cores,
                "cpu_power_per_busy_core_w": cpu_w_per_core,
                "gpu_power_w": gpu_power,
                "gpu_power_source": gpu_source,
                "workstation_power_w": WORKSTATION_POWER_W,
                "not_counted": "memory, disks, cooling, power-supply losses, idle power of shared cores",
            },
        }


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """Save the training curves PNG: loss (train, validation) and IoU/Dice (validation) per epoch.

    Args:
        history: one dict per epoch with ``epoch`` (1-based), ``train_loss`` and optionally
            ``val_loss``, ``val_iou``, ``val_dice``.
        path: the PNG file (written atomically, replaced if present).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="training loss")
    val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if val:
        ax1.plot(*zip(*val), "s-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_title("Loss per epoch")
    ax1.grid(alpha=0.3)
    ax1.legend()
    for key, marker, label in (("val_iou", "o-", "validation IoU"), ("val_dice", "s--", "validation Dice")):
        pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            ax2.plot(*zip(*pts), marker, label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("overlap")
    ax2.set_ylim(0, 1)
    ax2.set_title("Validation IoU / Dice per epoch")
    ax2.grid(alpha=0.3)
    if any(h.get("val_iou") is not None for h in history):
        ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    target = Path(path)
    write_atomic(target, lambda tmp: fig.savefig(tmp, dpi=100, format="png"), overwrite=True)
    plt.close(fig)
    return target


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable training report."""
    e = report["energy"]
    a = e["assumptions"]
    lines = [
        f"# Training report: {report['model_id']}",
        "",
        f"- data: `{report['data_dir']}` ({report['n_train_cases']} training / {report['n_val_cases']} validation cases"
        + (f", fold {report['fold'] + 1} of {report['folds']}" if report["folds"] > 1 else "") + ")",
        f"- epochs: {report['epochs_done']} of {report['epochs']}; best epoch {report['best_epoch']}",
        f"- best validation Dice {report['best_val_dice']:.4f}, IoU {report['best_val_iou']:.4f}"
        if report.get("best_val_dice") is not None else "- no validation split (last epoch kept)",
        f"- device: {report['device']} x {report['world_size']} process(es), AMP {'on' if report['amp'] else 'off'}",
        f"- training time: {e['training_time_s']:.0f} s; CPU time {e['cpu_time_s']:.0f} s",
        "",
        "## Energy and carbon footprint (Narimani et al., Eq. 9: CFP = 0.475 kg CO2/kWh x energy)",
        "",
        f"- estimated energy: {e['energy_kwh'] * 1000:.2f} Wh (CPU {e['cpu_energy_kwh'] * 1000:.2f} Wh, "
        f"GPU {e['gpu_energy_kwh'] * 1000:.2f} Wh)",
        f"- carbon footprint: {e['carbon_footprint_kg_co2'] * 1000:.2f} g CO2",
        f"- with Narimani et al.'s ~1 kW workstation assumption: {e['carbon_footprint_1kw_workstation_kg_co2'] * 1000:.2f} g CO2",
        f"- assumptions: CPU package {a['cpu_package_power_w']:.0f} W over {a['logical_cores']} logical cores "
        f"({a['cpu_power_per_busy_core_w']:.1f} W per busy core) x this run's CPU time; GPU {a['gpu_power_w']:.0f} W "
        f"({a['gpu_power_source']}); not counted: {a['not_counted']}.",
        "",
        "## Per epoch",
        "",
        "| epoch | train loss | val loss | val Dice | val IoU | lr | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]

    def f(v: Any, fmt: str = ".4f") -> str:
        return "-" if v is None else format(v, fmt)

    for h in report["history"]:
        lines.append(f"| {h['epoch']} | {f(h['train_loss'])} | {f(h.get('val_loss'))} | {f(h.get('val_dice'))} | "
                     f"{f(h.get('val_iou'))} | {f(h.get('lr'), '.2e')} | {f(h.get('epoch_time_s'), '.1f')} |")
    lines += ["", f"Command: `{report.get('training_command', '')}`", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], output_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``training_report.json`` and ``training_report.md`` (atomically) into ``output_dir``."""
    out = Path(output_dir)
    j = write_text_atomic(out / "training_report.json", json.dumps(report, indent=2) + "\n", overwrite=True)
    m = write_text_atomic(out / "training_report.md", report_markdown(report), overwrite=True)
    return j, m
