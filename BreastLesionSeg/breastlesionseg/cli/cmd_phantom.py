"""``breastlesionseg phantom``: generate a deterministic synthetic breast DCE-MRI exam with ground truth.

Writes pre.nii.gz, post1.nii.gz .. postK.nii.gz, breast_mask.nii.gz (1 left, 2 right), lesions.nii.gz
(instances 1..N by decreasing volume), tissue.nii.gz, structures.nii.gz (vessels, lymph nodes) and phantom.json
into the output folder and prints a summary (phases, grid, breast volumes, lesion table). Same seed and
options -> identical files. Existing files are never replaced without --force.
"""
from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def _numbers(kind: type, count: int, what: str):
    def parse(text: str):
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        try:
            vals = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be {count} comma-separated {kind.__name__} values, "
                                             f"got '{text}'") from None
        if len(vals) != count:
            raise argparse.ArgumentTypeError(f"{what} must be {count} comma-separated values, got '{text}'")
        return vals
    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``phantom`` sub-command."""
    p = subparsers.add_parser(
        "phantom",
        help="generate a synthetic breast DCE-MRI exam (phases + breast mask + lesion labels + JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed of the patient (default 0)")
    p.add_argument("--size", type=_numbers(int, 3, "--size"), metavar="X,Y,Z",
                   help="grid size in voxels (default 224,128,64; without --spacing the 336x192x128 mm FOV is kept)")
    p.add_argument("--spacing", type=_numbers(float, 3, "--spacing"), metavar="X,Y,Z",
                   help="voxel spacing in mm (default: FOV / size, i.e. 1.5,1.5,2.0)")
    p.add_argument("--n-post", type=int, default=4, metavar="K", help="post-contrast phases, 2-6 (default 4)")
    p.add_argument("--oblique", type=float, default=0.0, metavar="DEG",
                   help="rotate the grid direction by DEG degrees (default 0 = axial LPS)")
    p.add_argument("--oblique-axis", choices=("x", "y", "z"), default="z", help="axis of the oblique rotation")
    p.add_argument("--lesions", type=_numbers(int, 2, "--lesions"), default=(0, 3), metavar="MIN,MAX",
                   help="inclusive range of the number of lesions (default 0,3)")
    p.add_argument("--lesion-diameter", type=_numbers(float, 2, "--lesion-diameter"), default=(5.0, 30.0),
                   metavar="MIN,MAX", help="lesion equivalent diameter range in mm, within 3-30 (default 5,30)")
    p.add_argument("--no-fat-sat", action="store_true", help="non-fat-saturated T1 (bright fat)")
    p.add_argument("--intensity-scale", type=float, default=1.0, help="multiply all intensities (default 1)")
    p.add_argument("--noise", type=float, default=3.0, metavar="PERCENT",
                   help="Rician noise sigma in %% of fibroglandular signal (default 3)")
    p.add_argument("--bias", type=float, default=0.2, help="bias-field strength (default 0.2 = about +-20%%)")
    p.add_argument("--bpe", type=float, default=20.0, metavar="PERCENT",
                   help="mean background parenchymal enhancement at the last phase in %% (default 20)")
    p.add_argument("--force", action="store_true", help="overwrite existing phantom files in DIR")
    p.add_argument("--json", action="store_true", help="print the phantom summary as JSON")
    p.set_defaults(func=run)


def format_summary(summary: dict, paths: dict) -> str:
    """Human-readable summary of a written phantom."""
    geo = summary["geometry"]
    times = summary.get("acquisition_times_s") or []
    phases = ", ".join(f"{n} ({t:.0f} s)" for n, t in zip(summary["phases"], times)) if times else \
        ", ".join(summary["phases"])
    vols = summary["breast_volumes_ml"]
    lines = [
        f"phantom seed {summary['config']['seed']}: {len(summary['phases'])} phases: {phases}",
        f"grid: {' x '.join(map(str, geo['size_xyz']))} voxels, spacing "
        f"{' x '.join(f'{s:.3g}' for s in geo['spacing_mm_xyz'])} mm, orientation {geo['orientation']}, "
        f"origin ({', '.join(f'{o:.1f}' for o in geo['origin_lps_mm'])}) mm LPS",
        f"breast volumes: left {vols['left']:.1f} mL, right {vols['right']:.1f} mL",
        f"lesions: {summary['n_lesions']}",
    ]
    if summary["lesions"]:
        lines.append(f"  {'#':>2} {'side':<6}{'kind':<9}{'shape':<11}{'volume mm3':>11}{'mL':>8}{'diam mm':>8}"
                     f"  {'kinetics':<11}{'peak PE %':>9}")
        for les in summary["lesions"]:
            lines.append(
                f"  {les['index']:>2} {les['side']:<6}{les['kind']:<9}{les['shape']:<11}{les['volume_mm3']:>11.1f}"
                f"{les['volume_ml']:>8.3f}{les['diameter_mm']:>8.1f}  {les['kinetics']:<11}"
                f"{les['peak_enhancement_percent']:>9.0f}"
            )
    lines.append(f"generated in {summary['generation_time_s']:.2f} s; files:")
    lines += [f"  {p}" for p in paths.values()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Generate and write the phantom; print its summary."""
    from ..phantom import PhantomConfig, generate_phantom, write_phantom
    from ..phantom.io import check_phantom_targets

    config = PhantomConfig(
        seed=args.seed,
        size=args.size if args.size is not None else PhantomConfig.size,
        spacing=args.spacing,
        oblique_deg=args.oblique,
        oblique_axis=args.oblique_axis,
        n_post=args.n_post,
        n_lesions=args.lesions,
        lesion_diameter_mm=args.lesion_diameter,
        fat_saturated=not args.no_fat_sat,
        intensity_scale=args.intensity_scale,
        noise_percent=args.noise,
        bias_strength=args.bias,
        bpe_percent=args.bpe,
    )
    check_phantom_targets(args.output, config.phase_names, overwrite=args.force)  # fail before generating
    phantom = generate_phantom(config)
    paths = write_phantom(phantom, args.output, overwrite=args.force)
    summary = phantom.summary()
    if args.json:
        print(json.dumps({**summary, "files": {k: str(v) for k, v in paths.items()}}, indent=2))
    else:
        print(format_summary(summary, paths))
    return 0
