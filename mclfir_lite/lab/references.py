"""The series' bibliography, in one place: every notebook ends with a numbered references
section rendered from here (``references.markdown(["mclfir", "asen"])``), so a reference is
written, and corrected, once.

Each entry: ``authors``, ``title``, ``venue``, and ``url`` when a stable link is known
(arXiv abstract pages); entries without a known link are cited by title and venue only.
"""
from __future__ import annotations

__all__ = ["REFERENCES", "markdown", "cite"]

REFERENCES: dict[str, dict] = {
    "mclfir": dict(authors="Xiao & Yamasaki",
                   title="MCL-FIR: continual learning for fine-grained fashion image retrieval (the paper this series follows)",
                   venue="arXiv 2603.20648 (preprint; no venue confirmed)",
                   url="https://arxiv.org/abs/2603.20648"),
    "asen": dict(authors="Ma et al.",
                 title="Fine-Grained Fashion Similarity Learning by Attribute-Specific Embedding Network",
                 venue="AAAI 2020; arXiv 2002.02814",
                 url="https://arxiv.org/abs/2002.02814"),
    "asen_v2": dict(authors="Dong et al.",
                    title="Fine-Grained Fashion Similarity Prediction by Attribute-Specific Embedding Learning",
                    venue="ASEN-v2, the journal version of ASEN, 2021; arXiv 2104.02429",
                    url="https://arxiv.org/abs/2104.02429"),
    "lwf": dict(authors="Li & Hoiem", title="Learning without Forgetting",
                venue="ECCV 2016 / IEEE TPAMI 2017; arXiv 1606.09282",
                url="https://arxiv.org/abs/1606.09282"),
    "ewc": dict(authors="Kirkpatrick et al.", title="Overcoming catastrophic forgetting in neural networks",
                venue="PNAS 2017; arXiv 1612.00796",
                url="https://arxiv.org/abs/1612.00796"),
    "simclr": dict(authors="Chen, Kornblith, Norouzi & Hinton",
                   title="A Simple Framework for Contrastive Learning of Visual Representations",
                   venue="ICML 2020; arXiv 2002.05709",
                   url="https://arxiv.org/abs/2002.05709"),
    "cpc": dict(authors="van den Oord, Li & Vinyals",
                title="Representation Learning with Contrastive Predictive Coding (InfoNCE)",
                venue="arXiv 1807.03748", url="https://arxiv.org/abs/1807.03748"),
    "mean_teacher": dict(authors="Tarvainen & Valpola",
                         title="Mean teachers are better role models: weight-averaged consistency targets "
                               "improve semi-supervised deep learning",
                         venue="NeurIPS 2017; arXiv 1703.01780",
                         url="https://arxiv.org/abs/1703.01780"),
    "cl_crossmodal": dict(authors="Wang, Herranz & van de Weijer",
                          title="Continual learning in cross-modal retrieval",
                          venue="CVPR Workshops 2021; arXiv 2104.06806",
                          url="https://arxiv.org/abs/2104.06806"),
    "magiclens": dict(authors="Zhang et al.",
                      title="MagicLens: Self-Supervised Image Retrieval with Open-Ended Instructions",
                      venue="ICML 2024; arXiv 2403.19651",
                      url="https://arxiv.org/abs/2403.19651"),
    "focallens": dict(authors="Hsieh et al.",
                      title="FocalLens: Instruction Tuning Enables Zero-Shot Conditional Image Representations",
                      venue="2025 preprint; arXiv 2504.08368",
                      url="https://arxiv.org/abs/2504.08368"),
    "clip": dict(authors="Radford et al.",
                 title="Learning Transferable Visual Models From Natural Language Supervision (CLIP)",
                 venue="ICML 2021; arXiv 2103.00020",
                 url="https://arxiv.org/abs/2103.00020"),
    "efficientnet": dict(authors="Tan & Le",
                         title="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
                         venue="ICML 2019; arXiv 1905.11946",
                         url="https://arxiv.org/abs/1905.11946"),
    "facenet": dict(authors="Schroff, Kalenichenko & Philbin",
                    title="FaceNet: A Unified Embedding for Face Recognition and Clustering (triplet loss, "
                          "semi-hard mining)",
                    venue="CVPR 2015; arXiv 1503.03832",
                    url="https://arxiv.org/abs/1503.03832"),
    "gem": dict(authors="Lopez-Paz & Ranzato",
                title="Gradient Episodic Memory for Continual Learning (accuracy matrix, BWT)",
                venue="NeurIPS 2017; arXiv 1706.08840",
                url="https://arxiv.org/abs/1706.08840"),
    "riemannian_walk": dict(authors="Chaudhry, Dokania, Ajanthan & Torr",
                            title="Riemannian Walk for Incremental Learning: Understanding Forgetting and "
                                  "Intransigence (the forgetting measure)",
                            venue="ECCV 2018; arXiv 1801.10112",
                            url="https://arxiv.org/abs/1801.10112"),
    "online_ewc": dict(authors="Schwarz et al.",
                       title="Progress & Compress: A scalable framework for continual learning (online EWC)",
                       venue="ICML 2018; arXiv 1805.06370",
                       url="https://arxiv.org/abs/1805.06370"),
    "tiny_memories": dict(authors="Chaudhry et al.",
                          title="On Tiny Episodic Memories in Continual Learning (experience replay)",
                          venue="arXiv 1902.10486, 2019",
                          url="https://arxiv.org/abs/1902.10486"),
    "experience_replay": dict(authors="Rolnick, Ahuja, Schwarz, Lillicrap & Wayne",
                              title="Experience Replay for Continual Learning",
                              venue="NeurIPS 2019; arXiv 1811.11682",
                              url="https://arxiv.org/abs/1811.11682"),
    "bct": dict(authors="Shen, Xiong, Xia & Soatto",
                title="Towards Backward-Compatible Representation Learning (BCT)",
                venue="CVPR 2020; arXiv 2003.11942",
                url="https://arxiv.org/abs/2003.11942"),
    "fastfill": dict(authors="Jaeckle, Faghri, Farhadi, Tuzel & Pouransari",
                     title="FastFill: Efficient Compatible Model Update (partial backfilling with a policy order)",
                     venue="ICLR 2023; OpenReview rnRiiHw8Vy",
                     url="https://openreview.net/forum?id=rnRiiHw8Vy"),
    "sdfn": dict(authors="Wu, Li, Wang, Zhang & Liang",
                 title="Self-distilled Dynamic Fusion Network for Language-based Fashion Retrieval (SDFN)",
                 venue="ICASSP 2024; arXiv 2405.15451",
                 url="https://arxiv.org/abs/2405.15451"),
    "fashioniq": dict(authors="Wu, Gao, Guo, Al-Halah, Rennie, Grauman & Feris",
                      title="Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback",
                      venue="CVPR 2021; arXiv 1905.12794",
                      url="https://arxiv.org/abs/1905.12794"),
    "tirg": dict(authors="Vo, Jiang, Sun, Murphy, Li, Fei-Fei & Hays",
                 title="Composing Text and Image for Image Retrieval - An Empirical Odyssey (TIRG)",
                 venue="CVPR 2019; arXiv 1812.07119",
                 url="https://arxiv.org/abs/1812.07119"),
    "film": dict(authors="Perez, Strub, de Vries, Dumoulin & Courville",
                 title="FiLM: Visual Reasoning with a General Conditioning Layer",
                 venue="AAAI 2018; arXiv 1709.07871",
                 url="https://arxiv.org/abs/1709.07871"),
    "supcon": dict(authors="Khosla et al.", title="Supervised Contrastive Learning (same-label items are not negatives)",
                   venue="NeurIPS 2020; arXiv 2004.11362", url="https://arxiv.org/abs/2004.11362"),
    "deepfashion": dict(authors="Liu, Luo, Qiu, Wang & Tang",
                        title="DeepFashion: Powering Robust Clothes Recognition and Retrieval with Rich Annotations",
                        venue="CVPR 2016", url="https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion.html"),
    "darn": dict(authors="Huang, Feris, Chen & Yan",
                 title="Cross-domain Image Retrieval with a Dual Attribute-aware Ranking Network (DARN)",
                 venue="ICCV 2015; arXiv 1505.07922", url="https://arxiv.org/abs/1505.07922"),
    "zappos50k": dict(authors="Yu & Grauman", title="Fine-Grained Visual Comparisons with Local Learning (UT-Zappos50K)",
                      venue="CVPR 2014", url="https://vision.cs.utexas.edu/projects/finegrained/utzap50k/"),
    "fashionai": dict(authors="Zou et al.", title="FashionAI: A Hierarchical Dataset for Fashion Understanding",
                      venue="CVPR Workshops 2019"),
    "fashion_product_images": dict(authors="Aggarwal", title="Fashion Product Images (Small)",
                                   venue="Kaggle dataset",
                                   url="https://www.kaggle.com/datasets/paramaggarwal/fashion-product-images-small"),
}


def cite(key: str) -> str:
    """One reference as a markdown line (title linked when a link is known)."""
    if key not in REFERENCES:
        raise KeyError(f"unknown reference {key!r}; known: {sorted(REFERENCES)}")
    r = REFERENCES[key]
    title = f"[{r['title']}]({r['url']})" if r.get("url") else f"*{r['title']}*"
    return f"{r['authors'].rstrip('.')}. {title}. {r['venue']}."


def markdown(keys, heading: str = "## References") -> str:
    """A numbered references section for ``keys``, in the order given."""
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise ValueError(f"a reference is listed twice: {keys}")
    lines = [heading, ""] + [f"{i}. {cite(k)}" for i, k in enumerate(keys, start=1)]
    return "\n".join(lines)
