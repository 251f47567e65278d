"""Emotion labels, everywhere in FER-2013 order."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The negative expressions, whose share the live view, the report's key moments and the exports follow.
NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
