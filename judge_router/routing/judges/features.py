"""What a learned judge sees of a prompt: a sparse vector of hashed n-grams and a few signals.

The vector keeps no text: words, word pairs and character 4-grams are hashed (CRC-32) into
`DIMENSIONS` buckets and only the bucket numbers and weights are kept. That is not anonymity: the
buckets of a short prompt can be guessed back by hashing a dictionary (see the README).

The featurizer is versioned by `FEATURIZER`; a model file records the version it was trained on and
is refused by any other, since the same prompt gives another vector. Change anything here (the
tokenizer, the n-grams, the signals, the weights) and the version must change with it.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass

from judge_router.routing.judges.heuristic import CODE, MATH

FEATURIZER = "hashed-ngrams-v1"
DIMENSIONS = 1 << 18  # buckets for the hashed n-grams; the signals sit above them
MAX_CHARS = 6000  # the judge's view is already cut; this bounds the cost per prompt (~1 ms)
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_WORD_SALT, _PAIR_SALT, _CHAR_SALT = 0x5EED1, 0x5EED2, 0x5EED3  # one hash space per n-gram kind
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
def _word_buckets(word: str) -> tuple[int, tuple[int, ...]]:
    """A word's own bucket and its character 4-grams' (the word padded with spaces): words recur
    across prompts, so this is most of what featurizing costs, and it is remembered."""
    padded = f" {word} "
    return _bucket(word, _WORD_SALT), tuple(
        _bucket(padded[start : start + 4], _CHAR_SALT) for start in range(len(padded) - 3)
    )


def _normalised(counts: dict[int, float]) -> dict[int, float]:
    """Sublinear term frequency (1 + log count), scaled to unit length: a long prompt's n-grams
    weigh as much in all as a short one's."""
    weighted = {index: 1.0 + math.log(count) for index, count in counts.items()}
    norm = math.sqrt(sum(value * value for value in weighted.values())) or 1.0
    return {index: value / norm for index, value in weighted.items()}


def featurize(text: str, prompt_tokens: int, turns: int = 1) -> Features:
    """The vector of one conversation's text (as the judge sees it) and its whole token count."""
    if len(text) > MAX_CHARS:  # the start and the end: where the task and the question usually are
        half = MAX_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    lowered = text.lower()
    words = _WORD.findall(lowered)
    grams: dict[int, float] = {}
    chars: dict[int, float] = {}
    for word, count in Counter(words).items():
        own, char_grams = _word_buckets(word)
        grams[own] = grams.get(own, 0) + count
        for index in char_grams:
            chars[index] = chars.get(index, 0) + count
    for first, second in zip(words, words[1:], strict=False):
        index = _bucket(f"{first} {second}", _PAIR_SALT)
        grams[index] = grams.get(index, 0) + 1
    vector = _normalised(grams)
    for index, value in _normalised(chars).items():
        vector[index] = vector.get(index, 0.0) + value
    signals = (
        min(math.log1p(prompt_tokens) / 10, 1.5),
        min(turns / 10, 1.0),
        min(text.count("?") / 5, 1.0),
        1.0 if CODE.search(text) else 0.0,
        1.0 if MATH.search(text) else 0.0,
        min(len(words) / 1000, 1.0),
        sum(map(str.isdigit, text)) / max(len(text), 1),
        min(text.count("\n") / 50, 1.0),
    )
    for offset, value in enumerate(signals):
        if value:
            vector[DIMENSIONS + offset] = float(value)
    indices = tuple(sorted(vector))
    return Features(indices, tuple(vector[i] for i in indices))


WIDTH = DIMENSIONS + len(SIGNALS)  # every index a vector may hold is below this
