"""Zero-shot and generic baselines: what you get before training any attribute head.

1. **Generic embedding** (:func:`generic_baseline`, offline). A pretrained encoder's
   features, globally average-pooled and L2-normalised: one vector per image, with *no*
   attribute head. It is evaluated on every attribute with the same protocol and
   :func:`mclfir_lite.core.metrics.mean_average_precision` as the trained models. The point:
   it ranks the gallery the same way whichever attribute you ask about, so it can be
   good for one attribute (often colour or category) and near chance for another.
   :func:`mclfir_lite.core.metrics.chance_map_per_attribute` is the reference row (the
   expected mAP of a random ranking).
2. **CLIP zero-shot** (:func:`clip_zero_shot`, when CLIP weights are on disk). Each
   value of an attribute becomes a prompt, ``"a photo of a garment with {value}
   {attribute}"``, through open_clip's text tower. Two results per attribute:

   * *zero-shot classification*: the accuracy of the value whose prompt is closest to
     the image;
   * *text-conditioned retrieval*: each image is represented, for attribute ``a``, by its
     softmax over ``a``'s prompts (an attribute-specific embedding made from language
     alone), and ranked with the same mAP code. Unlike the generic embedding, it depends
     on the attribute asked about.

   :func:`load_clip` never downloads unless asked to and never hangs without a network:
   without weights it returns ``None`` and a message saying why, and
   :func:`clip_zero_shot` returns ``None`` after printing it.
"""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from ..core import metrics
from ..data.table import AttributeSplit
from .features import encode_dataset, pooled

TEMPLATE = "a photo of a garment with {value} {attribute}"


def _attrs(protocol: dict[str, AttributeSplit], attributes) -> list[str]:
    attributes = list(protocol) if attributes is None else list(attributes)
    unknown = [a for a in attributes if a not in protocol]
    if unknown:
        raise ValueError(f"attribute(s) {unknown} are not in the protocol {list(protocol)}")
    return attributes


def embedding_map(embeddings: torch.Tensor, labels: dict[str, np.ndarray], protocol: dict[str, AttributeSplit],
                  attributes=None) -> dict[str, float]:
    """mAP per attribute when every attribute is ranked with the same ``embeddings`` (one
    row per table row): the evaluation of a generic, attribute-blind embedding."""
    out = {}
    for a in _attrs(protocol, attributes):
        sp = protocol[a]
        out[a] = metrics.mean_average_precision(embeddings[torch.as_tensor(sp.query)],
                                                embeddings[torch.as_tensor(sp.candidate)],
                                                labels[a][sp.query], labels[a][sp.candidate])
    return out


def generic_embeddings(encoder, images: torch.Tensor, key_parts=(), progress: bool = False,
                       use_cache: bool = True) -> torch.Tensor:
    """Pooled, L2-normalised features of every image (via the feature cache)."""
    return pooled(encode_dataset(encoder, images, key_parts, progress=progress, use_cache=use_cache))


def generic_baseline(images: torch.Tensor, labels: dict[str, np.ndarray], protocol: dict[str, AttributeSplit],
                     encoder="efficientnet_lite0", attributes=None, key_parts=(), progress: bool = False) -> dict:
    """The generic-embedding baseline: ``{"encoder": description, "map": {attribute: mAP},
    "chance": {attribute: mAP}, "mean_map": float}``. ``encoder``: a name for
    :func:`mclfir_lite.core.encoders.build_encoder` (an unavailable CLIP model falls back to
    EfficientNet-Lite0, with a warning) or an encoder module."""
    if isinstance(encoder, str):
        from ..core.encoders import build_encoder
        encoder = build_encoder(encoder, trainable=False)
    emb = generic_embeddings(encoder, images, key_parts, progress=progress)
    maps = embedding_map(emb, labels, protocol, attributes)
    return {"encoder": getattr(encoder, "description", type(encoder).__name__), "map": maps,
            "chance": metrics.chance_map_per_attribute(labels, protocol, _attrs(protocol, attributes)),
            "mean_map": float(np.mean(list(maps.values())))}


# ---------------------------------------------------------------------------- CLIP

def open_clip_problem(model_name: str, pretrained: str) -> str | None:
    """What is wrong with ``open_clip:<model_name>:<pretrained>`` before anything is loaded or
    downloaded: a model open_clip does not have (with the closest names), no weights named (the
    tower would be random), a checkpoint path that is not a file, or a tag the model does not have
    (with its tags). None when open_clip knows them (whether the weights are on disk is another
    question: ``build_encoder`` then falls back, saying why), or when open_clip is not installed
    (``build_encoder`` says so)."""
    try:
        import open_clip
    except ImportError:
        return None
    import difflib
    import os
    models = open_clip.list_models()
    if model_name not in models:
        close = difflib.get_close_matches(model_name, models, n=3)
        return f"open_clip has no model {model_name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
    if not pretrained.strip():
        return (f"no weights named after the model: give open_clip:{model_name}:<pretrained tag or checkpoint "
                "path> (without them the tower would be random)")
    if os.path.isfile(pretrained):    # open_clip loads any file it is given
        return None
    if os.sep in pretrained or "/" in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")):
        return f"checkpoint file {pretrained!r} not found"
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    clean = lambda tag: tag.lower().replace("-", "_")   # as open_clip reads a tag
    if clean(pretrained) not in {clean(t) for t in tags}:
        return (f"open_clip's {model_name} has no pretrained tag {pretrained!r}; its tags: "
                f"{', '.join(tags) or 'none'} (or give a checkpoint path)")
    return None


def load_clip(model_name: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k", allow_download: bool = False):
    """``(model, tokenizer, description)`` of an open_clip model, or ``(None, None, why not)``.

    ``pretrained``: a checkpoint file, or a hub tag found in the local Hugging Face cache.
    With ``allow_download`` a missing tag is downloaded when huggingface.co answers within
    seconds (see :func:`mclfir_lite.core.encoders._open_clip_offline_safe`); never a hang.
    """
    try:
        import open_clip
        from ..core.encoders import clip_weights_cached, hub_offline, network_available
        import os
        if pretrained and (os.path.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(f"checkpoint not found: {pretrained}")
            model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        else:
            try:
                if clip_weights_cached(model_name, pretrained) is False:
                    raise FileNotFoundError("no such file in the local cache")
                with hub_offline():
                    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
            except Exception as err:
                if not allow_download:
                    raise RuntimeError(f"not in the local cache ({type(err).__name__}); pass a checkpoint path, "
                                       "or allow_download=True with a network") from err
                if not network_available():
                    raise ConnectionError("not in the local cache and huggingface.co cannot be reached") from err
                model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        model.eval()
        return model, open_clip.get_tokenizer(model_name), f"open_clip {model_name} ({pretrained})"
    except Exception as err:  # no weights, unknown model, no open_clip: say so, never raise
        return None, None, f"open_clip {model_name} ({pretrained}) unavailable: {type(err).__name__}: {str(err)[:200]}"


def readable(name: str) -> str:
    """``baseColour`` -> ``base colour``, ``sleeve_length`` -> ``sleeve length``: words for a prompt."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.sub(r"[_\-]+", " ", name).strip().lower()


def prompts(attribute: str, values: list[str], template: str = TEMPLATE) -> list[str]:
    """One prompt per value of ``attribute``."""
    return [template.format(value=readable(v), attribute=readable(attribute)) for v in values]


@torch.no_grad()
def clip_image_embeddings(model, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """L2-normalised CLIP image embeddings of uint8 images ``(N, 3, H, W)``: resized to the
    tower's input size and normalised with its mean and std."""
    visual = model.visual
    size = getattr(visual, "image_size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s:s + batch_size].float() / 255
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        out.append(F.normalize(model.encode_image((x - mean) / std).float(), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def clip_zero_shot(images: torch.Tensor, labels: dict[str, np.ndarray], values: dict[str, list[str]],
                   protocol: dict[str, AttributeSplit], attributes=None, clip=None, model_name: str = "ViT-B-32",
                   pretrained: str = "laion2b_s34b_b79k", template: str = TEMPLATE) -> dict | None:
    """CLIP zero-shot classification and text-conditioned retrieval per attribute (see the
    module docstring), or ``None`` (with a printed reason) when no CLIP weights are available.

    ``clip``: a ``(model, tokenizer, description)`` triple (e.g. from :func:`load_clip`);
    default: ``load_clip(model_name, pretrained)``. Returns ``{"model", "template",
    "accuracy": {a: float}, "map": {a: mAP, text-conditioned}, "image_map": {a: mAP of the
    plain CLIP image embedding}, "chance": {a: mAP}}``.
    """
    attributes = _attrs(protocol, attributes)
    model, tokenizer, description = clip if clip is not None else load_clip(model_name, pretrained)
    if model is None:
        print(f"CLIP zero-shot baseline skipped: {description}")
        return None
    rows = np.unique(np.concatenate([np.concatenate([protocol[a].query, protocol[a].candidate]) for a in attributes]))
    pos = {r: i for i, r in enumerate(rows)}
    img = clip_image_embeddings(model, images[torch.as_tensor(rows)])
    scale = float(model.logit_scale.exp()) if hasattr(model, "logit_scale") else 100.0
    result = {"model": description, "template": template, "accuracy": {}, "map": {}, "image_map": {},
              "chance": metrics.chance_map_per_attribute(labels, protocol, attributes)}
    for a in attributes:
        sp = protocol[a]
        text = F.normalize(model.encode_text(tokenizer(prompts(a, values[a], template))).float(), dim=-1)
        probs = torch.softmax(scale * img @ text.T, dim=-1)  # (rows, values of a)
        q, c = [pos[r] for r in sp.query], [pos[r] for r in sp.candidate]
        both = np.concatenate([sp.query, sp.candidate])
        pred = probs[[pos[r] for r in both]].argmax(-1).numpy()
        result["accuracy"][a] = float((pred == labels[a][both]).mean())
        cond = F.normalize(probs, dim=-1)
        result["map"][a] = metrics.mean_average_precision(cond[q], cond[c], labels[a][sp.query],
                                                          labels[a][sp.candidate])
        result["image_map"][a] = metrics.mean_average_precision(img[q], img[c], labels[a][sp.query],
                                                                labels[a][sp.candidate])
    return result
