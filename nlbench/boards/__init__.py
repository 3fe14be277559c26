"""Leaderboards by concern: records → rows, statistics, rendering, figures, claims, studies.

``nlbench.boards.leaderboard`` puts them together (``build``, ``stale``, ``write``).
"""
