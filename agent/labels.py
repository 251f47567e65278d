"""Emotion labels, everywhere in FER-2013 order."""

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The negative expressions, whose share the live view, the report's key moments and the exports follow.
NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
_NEGATIVE_MASK = np.array([name in NEGATIVE for name in EMOTIONS])


def negative_share(probabilities: np.ndarray) -> np.ndarray:
    """The probability of a negative expression: of one face's 7 scores (a 0-d array), or of each face's row of an
    [n, 7] array (an [n] array)."""
    return probabilities[..., _NEGATIVE_MASK].sum(axis=-1)
