"""Kept for the imports of ``rmguard.overopt.gold``: gold scoring lives in :mod:`rmguard.gold`, below the
evaluation and over-optimization packages that both use it."""

from rmguard.gold import GoldScorer

__all__ = ["GoldScorer"]
