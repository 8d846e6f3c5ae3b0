"""Leaderboard submissions: safe intake, validation, evaluation through the judge and score stages, entries,
and the leaderboard CSV and static HTML page."""

from .archive import IntakeLimits, SubmissionRejected, stage_submission
from .board import rebuild_leaderboard, validate_entry
from .validate import VideoLimits, validate_staged

__all__ = ["IntakeLimits", "SubmissionRejected", "VideoLimits", "rebuild_leaderboard", "stage_submission",
           "validate_entry", "validate_staged"]
