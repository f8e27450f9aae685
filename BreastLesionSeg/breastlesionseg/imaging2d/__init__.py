"""Shared 2D imaging layer for ultrasound and mammography (no torch import at package import time).

Modules:
    image2d: :class:`Image2D`, a grayscale image with its pixel spacing (mm) and provenance.
    image_io: read PNG/JPEG/BMP/TIFF and DICOM (single or multi-frame, ultrasound region calibration).
    letterbox: aspect-preserving resize to a square network input and the exact inverse.
    intensity: robust per-image intensity scaling to [0, 1].
    lesion_crops: lesion-containing and lesion-free crops (negatives) of an annotated image.
    augment: MONAI 2D training augmentation of an (image, mask) pair.
    training_loop: resumable training loop (checkpoint every epoch, early stopping).
    metrics2d: Dice/IoU/precision/recall/HD95 (MONAI) and ROC AUC/sensitivity/specificity.
    gradcam2d: Grad-CAM heat map of an image-level logit of a 2D network.
    model_card2d: model card (config, preprocessing, data, metrics, sha256) and safe weight loading.
    writer: atomic per-image outputs (mask PNG, result.json, heat map, overlay) and results.csv.
"""
