"""What a learned judge sees of a prompt: a sparse vector of hashed n-grams and a few signals.

The vector keeps no text: words, word pairs and character 4-grams are hashed (CRC-32) into
`DIMENSIONS` buckets and only the bucket numbers and weights are kept. That is not anonymity: the
buckets of a short prompt can be guessed back by hashing a dictionary (see the README).

The featurizer is versioned by `FEATURIZER`; a model file records the version it was trained on and
is refused by any other, since the same prompt gives another vector. Change anything here (the
tokenizer, the n-grams, the signals, the weights) and the version must change with it.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass
from itertools import chain

FEATURIZER = "hashed-ngrams-v2"
DIMENSIONS = 1 << 18  # buckets for the hashed n-grams; the signals sit above them
MAX_CHARS = 6000  # the judge's view is already cut; this bounds the cost per prompt (~1 ms)
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_WORD_SALT, _CHAR_SALT = 0x5EED1, 0x5EED3  # one hash space per n-gram kind
_PAIR_MIX = 0x9E3779B1  # a word pair's bucket mixes its words' buckets: no second hash per pair
# The code and math signals look for these among the prompt's words and substrings: set lookups
# over words already split, where the heuristic's regular expressions would scan the text again.
_CODE_WORDS = frozenset({"def", "class", "import", "function", "return", "select", "fn", "include",
                         "const", "var", "public", "static", "void", "lambda"})  # fmt: skip
_CODE_MARKS = ("```", "=>", "{\n", ";\n", "#include", "();")
_MATH_WORDS = frozenset({"integral", "derivative", "matrix", "eigenvalue", "eigenvalues",
                         "probability", "modulo", "polynomial", "equation", "inequality", "frac",
                         "sqrt", "sum", "binom", "lim"})  # fmt: skip
_MATH_MARKS = ("\\frac", "\\sqrt", "\\(", "^", "$$")
# Signals beside the n-grams, each a float in about [0, 1]; their order is part of the version.
SIGNALS = (
    "log_tokens", "turns", "questions", "code", "math", "words", "digits", "lines",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Features:
    """A sparse vector: bucket numbers in increasing order and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]
    featurizer: str = FEATURIZER

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.indices, self.values, strict=True))


def _bucket(text: str, salt: int) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"), salt) % DIMENSIONS


@functools.lru_cache(maxsize=65_536)
def _word_bucket(word: str) -> int:
    return _bucket(word, _WORD_SALT)


@functools.lru_cache(maxsize=65_536)
def _char_buckets(word: str) -> tuple[int, ...]:
    """The buckets of a word's character 4-grams (the word padded with spaces): words recur across
    prompts, so this is most of what featurizing costs, and it is remembered."""
    padded = f" {word} "
    return tuple(_bucket(padded[start : start + 4], _CHAR_SALT) for start in range(len(padded) - 3))


_SUBLINEAR = tuple(1.0 + math.log(count) if count else 0.0 for count in range(64))


def _normalised(counts: Counter[int]) -> dict[int, float]:
    """Sublinear term frequency (1 + log count), scaled to unit length: a long prompt's n-grams
    weigh as much in all as a short one's."""
    table, limit = _SUBLINEAR, len(_SUBLINEAR)
    weights = [table[c] if c < limit else 1.0 + math.log(c) for c in counts.values()]
    scale = 1.0 / (math.hypot(*weights) or 1.0)
    return dict(zip(counts, [weight * scale for weight in weights], strict=True))


def _looks_like(
    text: str, words: set[str], marks: tuple[str, ...], vocabulary: frozenset[str]
) -> bool:
    return not vocabulary.isdisjoint(words) or any(mark in text for mark in marks)


@functools.lru_cache(maxsize=1024)
def featurize(text: str, prompt_tokens: int, turns: int = 1) -> Features:
    """The vector of one conversation's text (as the judge sees it) and its whole token count.

    Remembered for the last prompts: in `hybrid` mode with `learn` on, the local judge and the
    row's stored vector are one computation, and a repeated prompt costs a lookup."""
    if len(text) > MAX_CHARS:  # the start and the end: where the task and the question usually are
        half = MAX_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    lowered = text.lower()
    words = _WORD.findall(lowered)
    # Every step below runs in C but for the per-word memo lookups and the pair mixing.
    owns = list(map(_word_bucket, words))
    grams = Counter(owns)
    grams.update([(a * _PAIR_MIX + b) % DIMENSIONS for a, b in zip(owns, owns[1:], strict=False)])
    chars = Counter(chain.from_iterable(map(_char_buckets, words)))
    vector = _normalised(chars)
    for index, value in _normalised(grams).items():  # the fewer: words and pairs
        vector[index] = vector.get(index, 0.0) + value
    distinct = set(words)
    signals = (
        min(math.log1p(prompt_tokens) / 10, 1.5),
        min(turns / 10, 1.0),
        min(text.count("?") / 5, 1.0),
        1.0 if _looks_like(lowered, distinct, _CODE_MARKS, _CODE_WORDS) else 0.0,
        1.0 if _looks_like(lowered, distinct, _MATH_MARKS, _MATH_WORDS) else 0.0,
        min(len(words) / 1000, 1.0),
        sum(map(str.isdigit, text)) / max(len(text), 1),
        min(text.count("\n") / 50, 1.0),
    )
    for offset, value in enumerate(signals):
        if value:
            vector[DIMENSIONS + offset] = float(value)
    indices = tuple(sorted(vector))
    return Features(indices, tuple(map(vector.__getitem__, indices)))


WIDTH = DIMENSIONS + len(SIGNALS)  # every index a vector may hold is below this


class FeaturesError(ValueError):
    """A stored vector that cannot be read back."""


def encode(features: Features) -> str:
    """The vector as the ledger stores it: `FEATURIZER:indices:values`, each array base64 of
    little-endian uint32 / float32 (about 11 characters a bucket)."""
    indices, values = array("I", features.indices), array("f", features.values)
    if array("I", [1]).tobytes()[0] != 1:  # a big-endian machine: store little-endian anyway
        indices.byteswap()
        values.byteswap()
    packed = (base64.b64encode(a.tobytes()).decode("ascii") for a in (indices, values))
    return ":".join((features.featurizer, *packed))


def decode(stored: str) -> Features:
    """A vector `encode` wrote; raises FeaturesError."""
    try:
        featurizer, packed_indices, packed_values = stored.split(":")
        indices, values = array("I"), array("f")
        indices.frombytes(base64.b64decode(packed_indices, validate=True))
        values.frombytes(base64.b64decode(packed_values, validate=True))
    except ValueError as exc:
        raise FeaturesError(f"a stored feature vector cannot be read: {exc}") from None
    if array("I", [1]).tobytes()[0] != 1:
        indices.byteswap()
        values.byteswap()
    if len(indices) != len(values):
        raise FeaturesError("a stored feature vector has more indices than values, or fewer")
    return Features(tuple(indices), tuple(values), featurizer)
