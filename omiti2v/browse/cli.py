"""`omiti2v browse RUN [RUN_B] [--out DIR]`: the static per-sample page of a run or a pair of runs."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("browse")
    p.add_argument("run", help="run folder (results/runs/<data>/<model>/<asm>-<schedule>); A of a pair")
    p.add_argument("run_b", nargs="?", help="a second run over the same samples, shown beside the first (B)")
    p.add_argument("--out", help="output folder (default RUN/browse, or RUN_B/browse/vs-<RUN's folder name> for "
                                 "a pair: where `omiti2v tables` and the leaderboard find it)")
    p.add_argument("--copy-videos", action="store_true",
                   help="copy the videos into OUT/videos/ (to publish OUT alone) instead of linking them")
    p.add_argument("--judge", metavar="NAME",
                   help="show the verdicts of an extra judge (judges/NAME/judge.jsonl, by `omiti2v rejudge`)")
    p.add_argument("--data-root", metavar="DIR", help="the benchmark's folder, when not where the run found it")
    p.set_defaults(func=browse_cmd)


def browse_cmd(args) -> int:
    from .page import build_page

    page, data = build_page(args.run, args.run_b, args.out, args.copy_videos, args.judge, args.data_root)
    print(f"{len(data['samples'])} samples, {' vs '.join(r['label'] for r in data['runs'])} -> {page}")
    for info in data["runs"]:
        for problem in info["missing"]:
            print(f"  {info['slot']}: {problem}")
    for slot, ids in data["left_out"].items():
        print(f"  {slot}: {len(ids)} sample(s) not in the other run, left out: {', '.join(ids[:5])}"
              + (" ..." if len(ids) > 5 else ""))
    return 0
