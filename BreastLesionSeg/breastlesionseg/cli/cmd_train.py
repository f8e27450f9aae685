"""``breastlesionseg train``: train or fine-tune a lesion model on a dataset (CPU, one GPU, or torchrun DDP)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from contextlib import nullcontext


def _triple(kind: type, name: str):
    def parse(text: str):
        try:
            values = tuple(kind(v) for v in text.replace("x", ",").split(","))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{name} must be 3 {kind.__name__} values like 16,32,32; got {text!r}") from exc
        if len(values) != 3:
            raise argparse.ArgumentTypeError(f"{name} must have 3 values (got {text!r})")
        return values
    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train", help="train or fine-tune a lesion model on a dataset (see docs/training.md)",
        description="Train MM-3DUNet (Wang et al. 2025 recipe) on a dataset built with 'breastlesionseg dataset add'. "
                    "Run under torchrun for several GPUs/nodes (DistributedDataParallel).",
    )
    p.add_argument("--data", required=True, help="dataset folder (dataset.json + cases/)")
    p.add_argument("--output", required=True, help="output model folder (weights, card, checkpoints, report)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--patch", type=_triple(int, "--patch"), default=(32, 64, 64), metavar="D,H,W",
                   help="training patch in voxels on the model grid (default 32,64,64)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--patches-per-case", type=int, default=4, help="patches per training case per epoch")
    p.add_argument("--pos-fraction", type=float, default=0.5, help="share of lesion-centred patches (default 0.5)")
    # literal, not training.config.POSITIVE_SAMPLING_MODES: importing the training package here would add
    # ~0.4 s to every CLI start; a test keeps the two equal
    p.add_argument("--positive-sampling", choices=("instance", "voxel"), default="instance",
                   help="lesion-centred patches: every lesion equally likely (instance, default) or every "
                        "lesion voxel (voxel: large lesions dominate)")
    p.add_argument("--lr", type=float, default=1e-4, help="initial learning rate (cosine annealing; default 1e-4)")
    p.add_argument("--min-lr", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--loss", choices=("dice_ce", "hybrid"), default="dice_ce",
                   help="dice_ce: Dice + ACT cross-entropy (Wang et al. 2025); hybrid: 0.1 Dice + 0.45 Focal + 0.45 CE (Narimani et al.)")
    p.add_argument("--act-weight", type=float, default=0.1, help="weight of the ACT cross-entropy")
    p.add_argument("--folds", type=int, default=1, help="k of k-fold cross-validation (1 = hold-out split)")
    p.add_argument("--fold", type=int, default=0, help="validation fold (0-based)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="hold-out share when --folds 1")
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs (and after the last)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/last.pt")
    p.add_argument("--init-from", default=None, metavar="MODEL", help="fine-tune from a model id or folder")
    p.add_argument("--force", action="store_true", help="replace a finished model / old checkpoints in OUTPUT")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arch", choices=("mm3dunet", "unet3d"), default="mm3dunet")
    p.add_argument("--expansion", type=int, default=12, help="MM-3DUNet channel expansion factor t")
    p.add_argument("--base-width", type=int, default=8)
    p.add_argument("--levels", type=int, default=4)
    act = p.add_mutually_exclusive_group()
    act.add_argument("--act", dest="act", action="store_true", default=True, help="train with the ACT head (default)")
    act.add_argument("--no-act", dest="act", action="store_false", help="no auxiliary classification head")
    p.add_argument("--channels", nargs="+", default=["pre", "post1", "sub1"], help="input channels")
    # literal, not nn.channels.NORMALIZATIONS (CLI start time, as above); a test keeps the two equal
    p.add_argument("--normalization", choices=("zscore", "robust", "none"), default="zscore",
                   help="per-channel intensity normalisation inside the breast region: zscore (mean / SD, default) "
                        "or robust (median / MAD: a subtraction's bright tails, e.g. fat edges without fat suppression, "
                        "do not change its scale)")
    p.add_argument("--spacing", type=_triple(float, "--spacing"), default=(1.5, 1.5, 1.5), metavar="X,Y,Z",
                   help="model grid spacing in mm (default 1.5,1.5,1.5)")
    p.add_argument("--margin-mm", type=float, default=16.0, help="optimized-volume crop margin (default 16 mm)")
    p.add_argument("--no-augment", action="store_true", help="no rotation/flip/intensity augmentation")
    p.add_argument("--acquisition-augment", type=float, default=0.0, metavar="P",
                   help="probability of each acquisition augmentation: noise, slice blur, low resolution, gamma, "
                        "bias field (default 0 = none; ignored with --no-augment)")
    p.add_argument("--subtraction-only", type=float, default=0.0, metavar="P",
                   help="probability that a training patch shows only its subtraction channels (the others set to "
                        "0), so the network learns to find lesions from the subtraction alone, as it must without "
                        "fat suppression (default 0 = never; ignored with --no-augment)")
    p.add_argument("--zoom-out", type=float, default=0.0, metavar="P",
                   help="probability that a training patch is shrunk by 0.7-1.0, so lesions look smaller than drawn "
                        "(default 0 = never; ignored with --no-augment)")
    # literal = training.config.CACHE_DTYPES (a test keeps the two equal)
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default="float32",
                   help="precision of the in-memory cache of preprocessed cases (float16: half the memory, for "
                        "datasets whose float32 cache does not fit; default float32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-time-s", type=float, default=None, help="stop after the epoch that exceeds this wall time")
    p.add_argument("--model-id", default="", help="model id in the card (default: the output folder name)")
    p.add_argument("--demo", action="store_true", help="mark the model card as a demonstration model")
    p.add_argument("--training-data", default="", help="training-data description for the card")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                   help="bar on stderr (default), JSON lines on stdout (for the Slicer module), or none")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of parsed arguments (with the reproducing command line)."""
    from ..training.config import TrainConfig

    cfg = TrainConfig(
        data_dir=args.data, output_dir=args.output, epochs=args.epochs, patch_size=args.patch,
        batch_size=args.batch_size, patches_per_case=args.patches_per_case, pos_fraction=args.pos_fraction,
        positive_sampling=args.positive_sampling, lr=args.lr, min_lr=args.min_lr, weight_decay=args.weight_decay, loss=args.loss, act_weight=args.act_weight,
        folds=args.folds, fold=args.fold, val_fraction=args.val_fraction,
        val_every=args.val_every, resume=args.resume,
        init_from=args.init_from, force=args.force, device=args.device, amp=args.amp, seed=args.seed,
        arch=args.arch, expansion=args.expansion, base_width=args.base_width, levels=args.levels, act=args.act,
        channels=tuple(args.channels), normalization=args.normalization, target_spacing_mm=args.spacing,
        crop_margin_mm=args.margin_mm,
        rotate_deg=0.0 if args.no_augment else 15.0, flip_prob=0.0 if args.no_augment else 0.5,
        intensity_scale=0.0 if args.no_augment else 0.2,
        acquisition_augment_prob=0.0 if args.no_augment else args.acquisition_augment,
        subtraction_only_prob=0.0 if args.no_augment else args.subtraction_only,
        zoom_out_prob=0.0 if args.no_augment else args.zoom_out,
        cache_dtype=args.cache_dtype, num_threads=args.threads,
        progress=args.progress,
        max_time_s=args.max_time_s, model_id=args.model_id, demo=args.demo, training_data=args.training_data,
    )
    cfg.training_command = command_line(cfg, args)
    return cfg


def command_line(cfg, args: argparse.Namespace) -> str:
    """An explicit ``breastlesionseg train ...`` command reproducing ``cfg`` (every setting spelled out)."""
    parts = ["breastlesionseg", "train", "--data", str(cfg.data_dir), "--output", str(cfg.output_dir),
             "--epochs", str(cfg.epochs), "--patch", ",".join(map(str, cfg.patch_size)),
             "--batch-size", str(cfg.batch_size), "--patches-per-case", str(cfg.patches_per_case),
             "--pos-fraction", f"{cfg.pos_fraction:g}", "--positive-sampling", cfg.positive_sampling, "--lr", f"{cfg.lr:g}", "--min-lr", f"{cfg.min_lr:g}",
             "--weight-decay", f"{cfg.weight_decay:g}", "--loss", cfg.loss, "--act-weight", f"{cfg.act_weight:g}",
             "--folds", str(cfg.folds), "--fold", str(cfg.fold), "--val-fraction", f"{cfg.val_fraction:g}", "--val-every", str(cfg.val_every),
             "--seed", str(cfg.seed), "--arch", cfg.arch, "--expansion", str(cfg.expansion),
             "--base-width", str(cfg.base_width), "--levels", str(cfg.levels), "--act" if cfg.act else "--no-act",
             "--channels", *cfg.channels, "--normalization", cfg.normalization,
             "--spacing", ",".join(f"{s:g}" for s in cfg.target_spacing_mm),
             "--margin-mm", f"{cfg.crop_margin_mm:g}", "--device", cfg.device]
    if args.no_augment:
        parts.append("--no-augment")
    else:
        if cfg.acquisition_augment_prob > 0:
            parts += ["--acquisition-augment", f"{cfg.acquisition_augment_prob:g}"]
        if cfg.subtraction_only_prob > 0:
            parts += ["--subtraction-only", f"{cfg.subtraction_only_prob:g}"]
        if cfg.zoom_out_prob > 0:
            parts += ["--zoom-out", f"{cfg.zoom_out_prob:g}"]
    if cfg.cache_dtype != "float32":
        parts += ["--cache-dtype", cfg.cache_dtype]
    if cfg.amp:
        parts.append("--amp")
    if cfg.init_from:
        parts += ["--init-from", cfg.init_from]
    if cfg.num_threads:
        parts += ["--threads", str(cfg.num_threads)]
    if cfg.max_time_s:
        parts += ["--max-time-s", f"{cfg.max_time_s:g}"]
    if args.model_id:
        parts += ["--model-id", cfg.model_id]
    if cfg.demo:
        parts.append("--demo")
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Run the training; JSON mode reports failures as an ``error`` event before the non-zero exit."""
    from ..errors import BreastLesionSegError
    from ..training.loop import train

    from ..io.output_claim import claim_output, require_writable_folder
    from ..training.distributed import launched_as_main_rank

    try:
        cfg = config_from_args(args)
        require_writable_folder(cfg.output_dir)  # before any work, not after the first epoch
        # one training per output folder; under torchrun the job's rank 0 claims it for every rank
        claim = claim_output(cfg.output_dir) if launched_as_main_rank() else nullcontext()
        with claim:
            result = train(cfg)
    except (BreastLesionSegError, ValueError) as exc:
        if args.progress == "json":
            sys.stdout.write(json.dumps({"event": "error", "message": str(exc)}) + "\n")
            sys.stdout.flush()
        if isinstance(exc, BreastLesionSegError):
            raise
        from ..errors import InputError

        raise InputError(str(exc)) from exc
    if args.progress != "json":
        dice = "-" if result.best_val_dice is None else f"{result.best_val_dice:.4f}"
        print(f"trained model written to {result.output_dir} (best epoch {result.best_epoch}, val Dice {dice}, "
              f"{result.report['energy']['training_time_s']:.0f} s, "
              f"{result.report['energy']['carbon_footprint_kg_co2'] * 1000:.2f} g CO2)")
    return 0
