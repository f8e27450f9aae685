"""``breastlesionseg train-ultrasound``: train the ultrasound network on BUS-BRA's patient-wise folds, or on a
BUS-BRA-like folder of your own images (e.g. the Slicer module's "Add to training set" pairs).

Resumable: every epoch writes ``OUTPUT/fold_<k>/last.pt``; rerun the same command with ``--resume``
to continue (finished folds are skipped). Example (the shipped model; see scripts/train_ultrasound_model.sh)::

    breastlesionseg train-ultrasound --data ../shared/data/busbra-ultrasound --output runs/us --folds 0 1 2 3 4 --resume

A folder without ``5-fold-cv.csv`` gets patient-wise folds derived from its ``Case`` column; images with an
empty ``Pathology`` train segmentation and lesion-present but not malignancy. Fine-tuning the shipped model
on such a folder (architecture, network and input size come from the model card)::

    breastlesionseg train-ultrasound --data my_us_pairs --output runs/us-site --init-from us-attunet-busbra

``--crop-classifier`` also trains each fold's lesion-crop malignancy classifiers after its network (one per
crop margin, ``fold_<k>/crop_classifier/`` and ``fold_<k>/crop_classifier_1/``, resumable the same way; trained
from scratch, also with ``--init-from``).
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

DEFAULT_ARCH = "attention_unet2d"
DEFAULT_INPUT_SIZE_PX = 128
DEFAULT_LEARNING_RATE = 2e-3
#: default learning rate when starting from a trained model (--init-from): a tenth of the from-scratch one
FINE_TUNE_LEARNING_RATE = 2e-4


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-ultrasound`` sub-command."""
    p = subparsers.add_parser("train-ultrasound", help="train the breast-ultrasound network on BUS-BRA folds (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR",
                   help="BUS-BRA(-like) folder (bus_data.csv, Images/, Masks/; 5-fold-cv.csv optional: without it "
                        "patient-wise folds are derived from the Case column)")
    p.add_argument("--output", required=True, metavar="DIR", help="run folder (fold_<k>/ checkpoints are written there)")
    p.add_argument("--folds", type=int, nargs="+", default=[0], metavar="K", help="0-based folds to train in order (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from the folds' last.pt checkpoints")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from the weights of this 2D ultrasound model (id, e.g. us-attunet-busbra, or folder); "
                        "arch, network and (unless --input-size is given) input size come from its card")
    p.add_argument("--arch", default=None, help=f"2D architecture (attention_unet2d | u2net_lite; default {DEFAULT_ARCH})")
    p.add_argument("--attention", default=None, help="attention_unet2d attention: cbam | nonlocal | both | none")
    p.add_argument("--seg-loss", default="dice+bce", help="segmentation loss: dice+bce | dice | bce")
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help=f"square network input side (default {DEFAULT_INPUT_SIZE_PX}, or the --init-from model's)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=10, metavar="EPOCHS")
    p.add_argument("--learning-rate", type=float, default=None,
                   help=f"AdamW learning rate (default {DEFAULT_LEARNING_RATE:g}; {FINE_TUNE_LEARNING_RATE:g} with --init-from)")
    p.add_argument("--no-bf16", action="store_true", help="train in float32 (default: bfloat16 autocast)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N; a run may be resumed "
                        "on another device (default auto)")
    p.add_argument("--holdout-device", default="", metavar="TEXT",
                   help="leave-one-scanner-out: the scanner whose name contains TEXT neither trains nor validates; "
                        "all its images are the test set (e.g. 'Toshiba')")
    p.add_argument("--crop-classifier", action="store_true",
                   help="also train each fold's lesion-crop malignancy classifier (ResNeXt-style, on the lesions the fold's "
                        "network predicts)")
    p.set_defaults(func=run)


def _network(args: argparse.Namespace, init_from: str | None) -> tuple[str, dict, int | None]:
    """(arch, network config dict, the init model's input size or None) of the arguments."""
    from ..errors import InputError
    from ..nn.config2d import config2d_from_dict

    if not init_from:
        arch = args.arch or DEFAULT_ARCH
        return arch, config2d_from_dict(arch, {"attention": args.attention} if args.attention else {}).to_dict(), None
    from ..ultrasound.train import init_model_card

    card = init_model_card(init_from)
    network = config2d_from_dict(card.arch, card.config).to_dict()
    if args.arch not in (None, card.arch) or args.attention not in (None, network.get("attention")):
        raise InputError(f"--init-from {init_from} is a {card.arch} network ({card.config}); drop --arch/--attention "
                         "or give the card's values")
    return card.arch, network, card.input_size_px


def build_config(args: argparse.Namespace, init_from: str | None = None):
    """The :class:`UltrasoundTrainConfig` of the arguments (arch and network from the ``init_from`` model's card)."""
    from ..imaging2d.training_loop import TrainLoopConfig
    from ..ultrasound.config import UltrasoundTrainConfig

    arch, network, card_size = _network(args, init_from)
    input_size = args.input_size if args.input_size is not None else (card_size or DEFAULT_INPUT_SIZE_PX)
    learning_rate = args.learning_rate if args.learning_rate is not None else (
        FINE_TUNE_LEARNING_RATE if init_from else DEFAULT_LEARNING_RATE)
    loop = TrainLoopConfig(max_epochs=args.max_epochs, patience_epochs=args.patience,
                           learning_rate=learning_rate, bf16=not args.no_bf16)
    return UltrasoundTrainConfig(arch=arch, network=network, input_size_px=input_size,
                                 batch_size=args.batch_size, seg_loss=args.seg_loss, loop=loop,
                                 holdout_device=args.holdout_device)


def run(args: argparse.Namespace) -> int:
    """Train the requested folds in sequence; returns 0."""
    import torch

    from ..ultrasound.train import recorded_init_from, train_fold

    from ..inference.device import describe_device, resolve_device

    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))  # an unknown or missing device fails before any image is read
    log.info("training on %s", describe_device(torch.device(device)))
    init_from = args.init_from
    if not init_from and args.resume:
        init_from = recorded_init_from(args.output, args.folds)
        if init_from:
            log.info("resuming a run that started from model %s", init_from)
    config = build_config(args, init_from)
    for fold in args.folds:
        train_fold(args.data, fold, args.output, config, resume=args.resume, init_from=init_from, device=device)
        if args.crop_classifier:
            from ..ultrasound.train_crop_classifier import train_crop_classifiers

            train_crop_classifiers(args.data, fold, args.output, resume=args.resume, device=device)
    return 0
