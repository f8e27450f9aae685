"""``breastlesionseg train-ultrasound``: train the ultrasound network on BUS-BRA's patient-wise folds.

Resumable: every epoch writes ``OUTPUT/fold_<k>/last.pt``; rerun the same command with ``--resume``
to continue (finished folds are skipped). Example (the shipped model; see scripts/train_ultrasound_model.sh)::

    breastlesionseg train-ultrasound --data ../shared/data/busbra-ultrasound --output runs/us --folds 0 1 2 3 4 --resume
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-ultrasound`` sub-command."""
    p = subparsers.add_parser("train-ultrasound", help="train the breast-ultrasound network on BUS-BRA folds (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="BUS-BRA folder (bus_data.csv, 5-fold-cv.csv, Images/, Masks/)")
    p.add_argument("--output", required=True, metavar="DIR", help="run folder (fold_<k>/ checkpoints are written there)")
    p.add_argument("--folds", type=int, nargs="+", default=[0], metavar="K", help="0-based folds to train in order (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from the folds' last.pt checkpoints")
    p.add_argument("--arch", default="attention_unet2d", help="2D architecture (attention_unet2d | u2net_lite)")
    p.add_argument("--attention", default=None, help="attention_unet2d attention: cbam | nonlocal | both | none")
    p.add_argument("--seg-loss", default="dice+bce", help="segmentation loss: dice+bce | dice | bce")
    p.add_argument("--input-size", type=int, default=128, metavar="PX", help="square network input side (default 128)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=10, metavar="EPOCHS")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--no-bf16", action="store_true", help="train in float32 (default: bfloat16 autocast)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--holdout-device", default="", metavar="TEXT",
                   help="leave-one-scanner-out: the scanner whose name contains TEXT neither trains nor validates; "
                        "all its images are the test set (e.g. 'Toshiba')")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """The :class:`UltrasoundTrainConfig` of the arguments."""
    from ..imaging2d.training_loop import TrainLoopConfig
    from ..nn.config2d import config2d_from_dict
    from ..ultrasound.config import UltrasoundTrainConfig

    network = config2d_from_dict(args.arch, {"attention": args.attention} if args.attention else {}).to_dict()
    loop = TrainLoopConfig(max_epochs=args.max_epochs, patience_epochs=args.patience,
                           learning_rate=args.learning_rate, bf16=not args.no_bf16)
    return UltrasoundTrainConfig(arch=args.arch, network=network, input_size_px=args.input_size,
                                 batch_size=args.batch_size, seg_loss=args.seg_loss, loop=loop,
                                 holdout_device=args.holdout_device)


def run(args: argparse.Namespace) -> int:
    """Train the requested folds in sequence; returns 0."""
    import torch

    from ..ultrasound.train import train_fold

    torch.set_num_threads(args.threads)
    config = build_config(args)
    for fold in args.folds:
        train_fold(args.data, fold, args.output, config, resume=args.resume)
    return 0
