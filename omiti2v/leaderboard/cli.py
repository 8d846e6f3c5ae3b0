"""`omiti2v submit PATH` (validate, evaluate, enter a submission) and `omiti2v leaderboard` (rebuild the page)."""

from __future__ import annotations

import os
from pathlib import Path

from .archive import VIDEO_BYTES_PER_ID, MiB, SubmissionRejected
from .validate import VideoLimits


def register(sub) -> None:
    board = f"{os.environ.get('OMITI2V_RESULTS', 'results')}/leaderboard"
    p = sub.add_parser("submit")
    p.add_argument("path", help="submission folder or .zip")
    p.add_argument("--data", default="omiti2v", help="Hydra data group the videos answer (mini | omiti2v | local)")
    p.add_argument("--judge", default="qwen2.5-vl-32b", help="Hydra judge group (tiny for a smoke test)")
    p.add_argument("--scorer", default="vbench", help="Hydra scorer group (tiny for a smoke test)")
    p.add_argument("--leaderboard", default=board, help="leaderboard root (entries/, runs/, index.html); "
                                                       "default $OMITI2V_RESULTS/leaderboard")
    p.add_argument("--name", help="entry name (default: submission.yaml name, else model-method)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing entry of the same name")
    p.add_argument("--validate-only", action="store_true", help="check the submission and stop")
    d = VideoLimits()
    p.add_argument("--min-frames", type=int, default=d.min_frames)
    p.add_argument("--max-frames", type=int, default=d.max_frames)
    p.add_argument("--min-fps", type=float, default=d.min_fps)
    p.add_argument("--max-fps", type=float, default=d.max_fps)
    p.add_argument("--min-side", type=int, default=d.min_side, help="minimum width and height in pixels")
    p.add_argument("--max-side", type=int, default=d.max_side, help="maximum width and height in pixels")
    p.add_argument("--max-short-side", type=int, default=d.max_short_side, help="maximum shorter side in pixels")
    p.add_argument("--max-decoded-mb", type=int, default=d.max_decoded_mb,
                   help="frames x width x height x 3 of one video, in MiB (OMITI2V_MAX_DECODED_MB)")
    p.add_argument("--max-video-mb", type=float, default=512, help="per-file size limit")
    p.add_argument("--max-total-mb", type=float, default=None,
                   help=f"total size limit (default {VIDEO_BYTES_PER_ID // MiB} MiB per expected file: "
                        "one per benchmark id, and submission.yaml)")
    p.add_argument("overrides", nargs="*", default=[], help="extra Hydra overrides, e.g. device=cuda")
    p.set_defaults(func=submit_cmd)

    lb = sub.add_parser("leaderboard")
    lb.add_argument("--leaderboard", default=board, help="leaderboard root; default $OMITI2V_RESULTS/leaderboard")
    lb.add_argument("--from-datasets", metavar="FOLDER",
                    help="rebuild the entries from the submission exports (`omiti2v export`) under FOLDER")
    lb.set_defaults(func=leaderboard_cmd)


def submit_cmd(args) -> int:
    from .submit import EvaluationError, submit

    limits = VideoLimits(args.min_frames, args.max_frames, args.min_fps, args.max_fps, args.min_side, args.max_side,
                         args.max_short_side, args.max_decoded_mb)
    total = None if args.max_total_mb is None else int(args.max_total_mb * MiB)
    try:
        result = submit(args.path, data=args.data, judge=args.judge, scorer=args.scorer, leaderboard=args.leaderboard,
                        name=args.name, overwrite=args.overwrite, video_limits=limits,
                        max_file_bytes=int(args.max_video_mb * MiB), max_total_bytes=total,
                        overrides=args.overrides, validate_only=args.validate_only)
    except SubmissionRejected as exc:
        for problem in exc.problems:
            print(f"rejected: {problem}")
        return 2
    except EvaluationError as exc:
        print(f"error: {exc}")
        return 4
    if args.validate_only:
        print(f"valid: {result['videos']} videos, model {result['metadata']['model']!r}, entry name {result['name']!r}")
        return 0
    overall = result["metrics"].get("overall", {}).get("value")
    print(f"entry {result['name']}: overall {overall if overall is None else round(overall, 2)}"
          f"{' (smoke)' if result['smoke'] else ''} -> {Path(args.leaderboard) / 'index.html'}")
    return 0


def leaderboard_cmd(args) -> int:
    from .board import rebuild_leaderboard

    if args.from_datasets:
        from .published import rebuild_from_exports

        csv_path, html_path, n = rebuild_from_exports(args.from_datasets, args.leaderboard)
        print(f"{n} entr{'y' if n == 1 else 'ies'} from the exports under {args.from_datasets}")
    else:
        csv_path, html_path = rebuild_leaderboard(args.leaderboard)
    print(f"wrote {csv_path} and {html_path}")
    return 0
