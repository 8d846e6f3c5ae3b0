"""Test-wide settings: no hub access, fixed threads, shared paths."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "videos"


@pytest.fixture
def shared_videos() -> Path:
    """The paper authors' six real videos (original and AlignVid pairs of Wan2.1, FramePack, FramePack-F1); skip where the shared folder is absent."""
    if not SHARED_VIDEOS.is_dir() or not any(SHARED_VIDEOS.glob("*.mp4")):
        pytest.skip(f"real videos not found at {SHARED_VIDEOS} (the shared folder beside the checkout)")
    return SHARED_VIDEOS
