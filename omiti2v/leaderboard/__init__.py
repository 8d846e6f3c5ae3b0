"""Leaderboard submissions: safe intake, validation, evaluation through the judge and score stages, entries,
and the leaderboard CSV and static HTML page. The modules load on first use."""

from ..registry import lazy_exports

__getattr__ = lazy_exports(__name__, {
    ".archive": ("IntakeLimits", "SubmissionRejected", "stage_submission"),
    ".board": ("rebuild_leaderboard", "validate_entry"),
    ".validate": ("VideoLimits", "validate_staged"),
})

__all__ = ["IntakeLimits", "SubmissionRejected", "VideoLimits", "rebuild_leaderboard", "stage_submission",
           "validate_entry", "validate_staged"]
