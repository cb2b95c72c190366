"""Captions written from SynthFashion's labels, and the tokenizer that reads them.

A text tower needs (image, caption) pairs. Real datasets have captions written by people;
SynthFashion knows every garment's attributes, so it can *write* them: "a red knee-length
garment with long sleeves". That gives a mini-CLIP data set for free, and because we know
exactly what each caption says, we also know which images it describes (its *relevant*
images): every image whose labels agree with each attribute the caption mentions.

Three things keep this honest:

* **Paraphrases.** Every attribute value has several phrasings (:data:`PHRASES`) and every
  caption a sentence frame (:data:`TRAIN_TEMPLATES`), so the tower cannot memorise one string.
* **Held-out templates.** Test captions use frames no training caption uses
  (:data:`TEST_TEMPLATES`): the tower must read the attribute words, not the frame.
* **Held-out words.** :data:`HELD_OUT_WORDS` are synonyms that no training caption contains
  ("scarlet" for red). A tower trained from scratch has never seen them, so it cannot know
  what they mean: the test measures that limit (a pretrained text tower such as CLIP's is
  the remedy), it is not expected to pass.

The :class:`Tokenizer` turns a caption into word and word-pair (bigram) ids. Bigrams matter
here: "long sleeves" and "long" alone mean different things. Its vocabulary *grows*: a
continual run adds the words of each new increment's captions, and the ids of known words
never change, so an embedding table indexed by them stays valid.
"""
from __future__ import annotations

import re

import numpy as np

from ..data.synth import ATTRIBUTES

__all__ = ["PHRASES", "HELD_OUT_WORDS", "TRAIN_TEMPLATES", "TEST_TEMPLATES", "describe", "caption",
           "value_captions", "Tokenizer", "matches"]

# How each attribute value can be said. Adjectives go before the noun, "with" phrases after it.
PHRASES: dict[str, dict[str, list[str]]] = {
    "colour": {v: [v] for v in ATTRIBUTES["colour"]},
    "pattern": {"solid": ["plain", "solid"], "h_stripes": ["horizontally striped", "horizontal-stripe"],
                "v_stripes": ["vertically striped", "vertical-stripe"], "dots": ["polka-dot", "dotted"],
                "checks": ["checked", "checkered"], "diagonal": ["diagonally striped", "diagonal-stripe"]},
    "length": {"cropped": ["cropped", "short cropped"], "hip": ["hip-length"], "thigh": ["thigh-length", "mini"],
               "knee": ["knee-length"], "ankle": ["ankle-length", "maxi"]},
    "silhouette": {"fitted": ["fitted", "tight"], "straight": ["straight", "boxy"], "a_line": ["a-line"],
                   "flared": ["flared", "wide flared"]},
    "sleeve_length": {"sleeveless": ["with no sleeves", "sleeveless"], "cap": ["with cap sleeves"],
                      "short": ["with short sleeves"], "elbow": ["with elbow sleeves", "with elbow-length sleeves"],
                      "three_quarter": ["with three-quarter sleeves"], "long": ["with long sleeves", "long-sleeved"]},
    "neckline": {"round": ["with a round neckline", "with a crew neck"], "v_neck": ["with a v-neck"],
                 "square": ["with a square neckline"], "high": ["with a high collar", "with a turtleneck"],
                 "boat": ["with a boat neckline"]},
}
# synonyms never used in training (a from-scratch tower cannot know them: see the module docstring)
HELD_OUT_WORDS: dict[str, dict[str, str]] = {
    "colour": {"red": "scarlet", "blue": "navy", "white": "ivory", "purple": "violet"},
    "length": {"ankle": "floor-length", "cropped": "midriff-baring"},
    "sleeve_length": {"sleeveless": "armless", "long": "with full sleeves"},
}
NOUNS_TRAIN = ("garment", "piece", "item")
TRAIN_TEMPLATES = ("a {adj} {noun} {with}", "{adj} {noun} {with}", "a photo of a {adj} {noun} {with}",
                   "this {noun} is {adj} {with}")
TEST_TEMPLATES = ("show me a {adj} one {with}", "i am looking for something {adj} {with}")


def value_phrase(attr: str, value: int, rng: np.random.Generator, held_out: bool = False) -> str:
    """A phrase naming value ``value`` of ``attr`` (drawn with ``rng``; a held-out wording when
    ``held_out`` and the value has one)."""
    name = ATTRIBUTES[attr][value]
    if held_out and name in HELD_OUT_WORDS.get(attr, {}):
        return HELD_OUT_WORDS[attr][name]
    options = PHRASES[attr][name]
    return options[int(rng.integers(len(options)))]


def describe(mentioned: dict[str, int], rng: np.random.Generator, templates=TRAIN_TEMPLATES,
             held_out_words: bool = False) -> str:
    """A caption mentioning exactly the ``{attribute: value index}`` pairs in ``mentioned``,
    in a random frame from ``templates`` and a random phrasing of each value."""
    adj, with_ = [], []
    for attr in rng.permutation(sorted(mentioned)):       # the order of the words varies too
        p = value_phrase(str(attr), int(mentioned[attr]), rng, held_out_words)
        (with_ if p.startswith("with ") else adj).append(p)
    template = templates[int(rng.integers(len(templates)))]
    text = template.format(adj=" ".join(adj), noun=NOUNS_TRAIN[int(rng.integers(len(NOUNS_TRAIN)))],
                           **{"with": " and ".join(with_)})
    return " ".join(text.split())


def caption(labels: dict[str, np.ndarray], row: int, attributes, rng: np.random.Generator,
            min_mentioned: int = 1) -> tuple[str, dict[str, int]]:
    """A training caption for image ``row``: a random subset (at least ``min_mentioned``) of
    ``attributes``, described with :data:`TRAIN_TEMPLATES`. Returns ``(text, mentioned)``."""
    attributes = list(attributes)
    k = int(rng.integers(min(min_mentioned, len(attributes)), len(attributes) + 1))
    chosen = rng.choice(len(attributes), size=max(k, 1), replace=False)
    mentioned = {attributes[i]: int(labels[attributes[i]][row]) for i in sorted(chosen)}
    return describe(mentioned, rng), mentioned


def value_captions(attr: str, seed: int = 0, per_value: int = 2, held_out_words: bool = False
                   ) -> tuple[list[str], np.ndarray]:
    """Test captions for one attribute: ``per_value`` captions per value in the held-out
    frames (:data:`TEST_TEMPLATES`), each mentioning that attribute only. Returns the texts and
    their value indices (a caption's relevant images are those with its value)."""
    rng = np.random.default_rng([seed, 7, len(attr)])
    texts, values = [], []
    for v in range(len(ATTRIBUTES[attr])):
        for _ in range(per_value):
            texts.append(describe({attr: v}, rng, TEST_TEMPLATES, held_out_words))
            values.append(v)
    return texts, np.asarray(values, dtype=np.int64)


def matches(labels: dict[str, np.ndarray], rows, mentioned: list[dict[str, int]]) -> np.ndarray:
    """``M[i, j]``: does image ``rows[i]`` agree with every attribute caption ``j`` mentions?
    (The caption of an image always matches it; many others do too, e.g. every red image
    matches "a red garment".)"""
    rows = np.asarray(rows)
    m = np.ones((len(rows), len(mentioned)), dtype=bool)
    for j, said in enumerate(mentioned):
        for attr, value in said.items():
            m[:, j] &= labels[attr][rows] == value
    return m


class Tokenizer:
    """Words and word pairs to ids, with a vocabulary that only grows.

    id 0 is ``<unk>`` (any word or pair not in the vocabulary). :meth:`extend` adds the words
    and bigrams of new texts at the end, so known ids never change. :meth:`encode` returns
    the flat ids and the offsets of each text, the input of ``torch.nn.EmbeddingBag``.
    """

    def __init__(self, words: list[str] | None = None):
        self.words = ["<unk>"] + [w for w in (words or []) if w != "<unk>"]
        self.index = {w: i for i, w in enumerate(self.words)}

    @staticmethod
    def tokens(text: str) -> list[str]:
        """Lower-case words (hyphens split words) and their adjacent pairs."""
        words = re.findall(r"[a-z]+", text.lower())
        return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]

    def extend(self, texts) -> int:
        """Add unseen tokens of ``texts``; return how many were added."""
        before = len(self.words)
        for text in texts:
            for t in self.tokens(text):
                if t not in self.index:
                    self.index[t] = len(self.words)
                    self.words.append(t)
        return len(self.words) - before

    def encode(self, texts) -> tuple[np.ndarray, np.ndarray]:
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            ids.extend(self.index.get(t, 0) for t in self.tokens(text) or ["<unk>"])
        return np.asarray(ids, dtype=np.int64), np.asarray(offsets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.words)
