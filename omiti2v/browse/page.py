"""The browse page: one HTML file with its data, style and script inline, beside the media it shows.

The rows (rows.py) go into the page as one JSON document in a `<script type="application/json">` block, with
`<`, `>`, `&`, U+2028 and U+2029 written as \\u escapes, so no string of a run or a submission can close the block
or open a comment; the page's script builds the DOM with textContent only and shows invisible and bidi-control
characters as visible ⟨U+XXXX⟩ marks. A Content-Security-Policy allows the page's own script and style (by
hash) and media beside it, nothing else: an injected script would not run, nothing is fetched from a server.

Media: each input image as a JPEG thumbnail in DIR/images/ (the benchmark may live in a cache folder that is not
published); videos linked where they are (relative links) or, with `copy_videos`, copied to DIR/videos/A|B/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from PIL import Image

from ..errors import SetupError
from ..runs import atomic_output, atomic_write_text
from . import PAGE_FILE, default_out, relative_href
from .rows import RunRecords, load_run, run_info, sample_rows

THUMBNAIL_SIDE = 640
# Written as \u escapes in the embedded JSON: what could end the script block (</script>) or open a comment (<!--),
# JavaScript's line ends U+2028/2029, and the invisible and bidi-control characters (no raw one in the source).
JSON_ESCAPED = re.compile("[<>&\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def embed_json(obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return JSON_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render(data: dict) -> str:
    """The page's HTML: the template with its data and a Content-Security-Policy naming its inline code."""
    template = resources.files("omiti2v.browse").joinpath("page.html").read_text(encoding="utf-8")
    (script,) = re.findall(r"<script>(.*?)</script>", template, flags=re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", template, flags=re.S)
    policy = (f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
              "img-src 'self' file: data:; media-src 'self' file:; base-uri 'none'; form-action 'none'")
    head, tail = template.replace("{{CSP}}", policy).split("{{DATA}}")
    return head + embed_json(data) + tail


def thumbnail(source: Path, target: Path) -> None:
    """A JPEG of at most THUMBNAIL_SIDE pixels a side (the benchmark checked the image when it loaded)."""
    with Image.open(source) as img:
        small = img.convert("RGB")
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    with atomic_output(target) as tmp:
        small.save(tmp, format="JPEG", quality=85)


def place_video(video: Path | None, out: Path, slot: str, copy: bool) -> str | None:
    """The page's link to a video: relative to where it is, or to its copy in DIR/videos/<slot>/."""
    if video is None:
        return None
    if not copy:
        return relative_href(video, out)
    target = out / "videos" / slot / video.name
    stat = video.stat()
    if not (target.is_file() and target.stat().st_size == stat.st_size and target.stat().st_mtime == stat.st_mtime):
        with atomic_output(target) as tmp:
            shutil.copy2(video, tmp)
    return relative_href(target, out)


def check_out(out: Path, runs: list[RunRecords]) -> None:
    """Refuse an output folder that is a run folder or its videos/ (the page's files would mix with the run's)."""
    resolved = out.resolve()
    for rec in runs:
        if resolved in (rec.run.path.resolve(), rec.run.videos.resolve()):
            raise SetupError(f"--out {out}: is the run folder {rec.run.path} or its videos/; choose another folder "
                             f"(default {default_out(*[r.run.path for r in runs])})")


def page_data(runs: list[RunRecords], out: Path, copy_videos: bool) -> dict:
    """Everything the page shows, with media placed under `out` and paths turned into links."""
    rows, left_out = sample_rows(runs)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        image = out / "images" / f"{row['id']}.jpg"
        thumbnail(row["image"], image)
        row["image"] = relative_href(image, out)
        for slot, cell in zip("AB", row["runs"], strict=False):
            cell["video"] = place_video(cell["video"], out, slot, copy_videos)
    infos = [run_info(rec, slot) for slot, rec in zip("AB", runs, strict=False)]
    for info, cells in zip(infos, zip(*(r["runs"] for r in rows), strict=True), strict=False):
        videos = sum(c["video"] is None for c in cells)
        unjudged = sum(v["state"] == "unjudged" for c in cells for v in c["verdicts"])
        info["missing"] += ([f"{videos} video(s) missing"] if videos else []) + (
            [f"{unjudged} question(s) without a verdict"] if unjudged else [])
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics))
    return {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "runs": infos, "metrics": metrics,
            "left_out": {slot: ids for slot, ids in left_out.items() if ids}, "samples": rows}


def build_page(run_a: str | Path, run_b: str | Path | None = None, out: str | Path | None = None,
               copy_videos: bool = False, judge: str | None = None, data_root: str | None = None) -> tuple[Path, dict]:
    """Write DIR/index.html (and DIR/images/, DIR/videos/ when copying) for one run or a pair; returns the page
    and its data."""
    paths = [Path(p) for p in (run_a, run_b) if p is not None]
    for path in paths:
        if not path.is_dir():
            raise SetupError(f"{path}: not a folder (give a run folder, results/runs/<data>/<model>/<asm>-<schedule>)")
    runs = [load_run(p, judge, data_root) for p in paths]
    out = Path(out) if out is not None else default_out(*paths)
    check_out(out, runs)
    data = page_data(runs, out, copy_videos)
    page = atomic_write_text(out / PAGE_FILE, render(data))
    return page, data
