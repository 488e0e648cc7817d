"""What this project knows about each anomalib 2.7 image model: one record per model, plain data.

Importing this module imports neither torch nor anomalib, so detector names are listed cheaply.
``class_name`` is the model's name in anomalib's registry (``anomalib.models.list_models(case=
"pascal")``, a class of ``anomalib.models``); ``name`` is the registry name here, anomalib's
snake-case name that ``anomalib.models.get_model`` resolves to the same class. Models of
anomalib's registry that are not wrapped are in ``EXCLUDED``, with the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Weights(enum.Enum):
    """How a model's pretrained parts get the weights the detector's parameters choose."""

    SWITCH = "built with anomalib's pre_trained=False, then the chosen backbone file is loaded"
    HARD_CODED = "anomalib hard-codes pretrained weights; anomalib_compat routes them to the chosen file"
    ARCHIVE = "a file from anomalib's own archive, injected through the constructor (anomalib_archives)"
    NONE = "trained from scratch, no pretrained parts"


@dataclass(frozen=True)
class AnomalibModel:
    """One wrapped model and the choices this wrapper makes for it."""

    name: str
    class_name: str
    description: str  # one line for `mkdata detectors` (anomalib's docstrings mostly say "Lightning Module")
    weights: Weights
    # Training epochs from anomalib's example configs (examples/configs/model/*.yaml). None: one
    # pass for memory-bank models (anomalib fixes their passes in trainer_arguments), else 100.
    epochs: int | None = None
    batch_size: int = 32  # anomalib's datamodules default to 32
    overrides: tuple[tuple[str, Any], ...] = ()  # constructor defaults this wrapper changes
    hint: str = ""  # appended to a missing-weights error
    yields_map: bool = True  # False: anomalib's output has no anomaly map
    calibrates_on_normal: bool = False  # computes statistics in on_validation_start (run on the training images)
    backbones: str = ""  # which backbones it takes (TIMM_CNN: any, packaged ones included); "" if none

    @property
    def takes_timm_cnn(self) -> bool:
        return self.backbones == TIMM_CNN

    @property
    def needs_weights(self) -> bool:
        return self.weights is not Weights.NONE


# What the backbone parameter takes; TIMM_CNN models also take the packaged backbones.
TIMM_CNN = "any timm CNN by name, layers naming its feature modules"
_DINO = "DINO ViT encoders only (encoder_name)"
_VIT = "timm ViT backbones only"
_CFA = "torchvision vgg19_bn, resnet18, wide_resnet50_2 or efficientnet_b5 only"
_UNINET = "torchvision ResNets only (student_backbone, teacher_backbone)"
_FASTFLOW = "cait_m48_448, deit_base_distilled_patch16_384, resnet18 or wide_resnet50_2 only"
_UFLOW = "mcait, resnet18 or wide_resnet50_2 only"
_RD = "ResNets with a matching decoder only (resnet18/34/50, wide_resnet50_2, ...)"
_S, _H, _A, _NONE = Weights.SWITCH, Weights.HARD_CODED, Weights.ARCHIVE, Weights.NONE


RECORDS: tuple[AnomalibModel, ...] = (
    AnomalibModel("anomaly_dino", "AnomalyDINO",
                  "AnomalyDINO: kNN of DINOv2 patch features to a memory bank of normal patches",
                  _H, backbones=_DINO),
    AnomalibModel("cfa", "Cfa", "CFA: coupled-hypersphere feature adaptation of CNN patch features",
                  _H, epochs=30, backbones=_CFA),
    AnomalibModel("cflow", "Cflow", "CFLOW-AD: conditional normalizing flows on multi-scale CNN features",
                  _S, epochs=50, backbones=TIMM_CNN),
    AnomalibModel("csflow", "Csflow", "CS-Flow: cross-scale normalizing flow on EfficientNet-B5 features", _H, epochs=240),
    AnomalibModel("dfkde", "Dfkde", "DFKDE: kernel density estimate of PCA-reduced pooled CNN features (image score only)",
                  _S, yields_map=False, backbones=TIMM_CNN),
    AnomalibModel("dfm", "Dfm", "DFM: PCA + Gaussian on pooled CNN features, feature-reconstruction error",
                  _S, backbones=TIMM_CNN),
    AnomalibModel("dinomaly", "Dinomaly", "Dinomaly: DINOv2 encoder, noisy-bottleneck transformer decoder reconstruction",
                  _H, backbones=_DINO),
    AnomalibModel("draem", "Draem", "DRAEM: reconstructive + discriminative subnetworks trained on simulated anomalies",
                  _NONE, epochs=700,
                  # Its paper's batch; at 32 one CPU step on 256² images went over 24 GiB, OOM-killed (measured).
                  batch_size=8,
                  # anomalib downloads the DTD textures when the folder is missing; None here means Perlin-noise
                  # textures instead (DRAEM's fallback), so DRAEM trains offline by default.
                  overrides=(("dtd_dir", None),)),
    AnomalibModel("dsr", "Dsr", "DSR: dual subspace re-projection with a pretrained VQ codebook", _A, epochs=700),
    AnomalibModel("efficient_ad", "EfficientAd",
                  "EfficientAD: student-teacher + autoencoder on a small patch descriptor network",
                  _A, epochs=1000,
                  batch_size=1,  # anomalib refuses any other
                  hint=" EfficientAd also needs natural images for its penalty loss: imagenet_dir=FOLDER.",
                  calibrates_on_normal=True),  # map-normalisation quantiles
    AnomalibModel("fastflow", "Fastflow", "FastFlow: 2D normalizing flow on CNN features",
                  _S, epochs=500, backbones=_FASTFLOW),
    AnomalibModel("foundad", "FoundAD", "FoundAD: projection of foundation-model (DINOv2) features onto the normal manifold",
                  _H, backbones=_DINO),
    AnomalibModel("fre", "Fre", "FRE: feature reconstruction error of a tied autoencoder on CNN features",
                  _S, epochs=220, backbones=TIMM_CNN),
    AnomalibModel("ganomaly", "Ganomaly", "GANomaly: encoder-decoder-encoder GAN, latent distance as score",
                  _NONE, epochs=100, yields_map=False),
    AnomalibModel("general_ad", "GeneralAD",
                  "GeneralAD: discriminator on ViT patch features with synthetic feature anomalies",
                  _S, backbones=_VIT),
    AnomalibModel("glass", "Glass", "GLASS: global and local anomaly synthesis in feature space, discriminator",
                  _H, epochs=100, backbones=TIMM_CNN),
    AnomalibModel("inp_former", "InpFormer", "INP-Former: intrinsic normal prototypes from a ViT, reconstruction",
                  _H, epochs=200, backbones=_DINO),
    AnomalibModel("l2bt", "L2BT", "L2BT: students learn to reproduce a frozen ViT's features", _H),
    AnomalibModel("mh_patchcore", "MHPatchcore", "MH-PatchCore: PatchCore with Mahalanobis-whitened PCA features",
                  _S, epochs=3, backbones=TIMM_CNN),
    AnomalibModel("padim", "Padim", "PaDiM: per-position Gaussian of multi-scale CNN patch features, Mahalanobis distance",
                  _S, backbones=TIMM_CNN),
    AnomalibModel("patchcore", "Patchcore", "PatchCore: kNN distance to a coreset memory bank of CNN patch features",
                  _S, backbones=TIMM_CNN),
    AnomalibModel("patchflow", "Patchflow", "PatchFlow: normalizing flow on local patch features",
                  _S, epochs=200, backbones=TIMM_CNN),
    AnomalibModel("rad", "Rad", "RAD: multi-layer ViT patch-feature memory bank with positional neighbours",
                  _S, backbones=_VIT),
    AnomalibModel("reverse_distillation", "ReverseDistillation",
                  "Reverse Distillation: one-class bottleneck, student decoder mimics the teacher",
                  _S, epochs=200, backbones=_RD),
    AnomalibModel("stfpm", "Stfpm", "STFPM: student-teacher feature pyramid matching", _H, epochs=100, backbones=TIMM_CNN),
    AnomalibModel("super_add", "SuperADD", "SuperADD: training-free DINOv3 patch-feature memory bank", _H, backbones=_VIT),
    AnomalibModel("supersimplenet", "Supersimplenet",
                  "SuperSimpleNet: feature adaptor + segmentation-detection head on synthetic anomalies",
                  _H, backbones=TIMM_CNN),
    AnomalibModel("uflow", "Uflow", "U-Flow: U-shaped normalizing flow on multi-scale features",
                  _H, epochs=200, backbones=_UFLOW),
    AnomalibModel("uninet", "UniNet", "UniNet: contrastive student-teacher distillation", _H, epochs=100, backbones=_UNINET),
)  # fmt: skip

# HARD_CODED models that do have anomalib's pre_trained switch, and why it cannot be used.
SWITCH_UNUSABLE = {"glass": "its pre_trained=False also unfreezes the backbone, a path that fails in anomalib 2.7"}

# Models of anomalib's registry that do not fit a fit-on-normal-images interface, and why.
EXCLUDED = {
    "AiVad": "video model (needs clips, object detections and a pose estimator)",
    "AnomalyVFM": "zero-shot foundation model: nothing to fit, weights only from the Hugging Face hub",
    "CFM": "needs RGB images plus 3D point clouds",
    "Fuvas": "video model (needs clips)",
    "VlmAd": "asks a vision-language model service in text; no training, no anomaly map",
    "WinClip": "zero/few-shot CLIP prompting; needs the open_clip package and a class name, no training",
}

BY_NAME = {record.name: record for record in RECORDS}
