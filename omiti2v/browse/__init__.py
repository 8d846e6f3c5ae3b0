"""`omiti2v browse`: a static page per run, or per pair of runs over the same samples, that shows each sample's
input image, video(s), prompt, questions, verdicts and scores (docs/browse.md).

rows.py reads the run folders into the page's rows, page.py writes the page (page.html is its template), cli.py
registers the command. This module holds where pages live by default, so that the tables and the leaderboard
can link to the pages that exist without importing the rest.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

PAGE_FOLDER = "browse"
PAGE_FILE = "index.html"
PAIR_PREFIX = "vs-"


def default_out(run_a: Path, run_b: Path | None = None) -> Path:
    """Where a page goes unless --out says otherwise: RUN/browse/ for one run; RUN_B/browse/vs-<RUN's folder
    name>/ for a pair (B is the run compared, A its reference)."""
    if run_b is None:
        return run_a / PAGE_FOLDER
    return run_b / PAGE_FOLDER / f"{PAIR_PREFIX}{run_a.name}"


def existing_pages(run: Path) -> list[tuple[str, Path]]:
    """(label, page file) of the pages built at the default places of `run`: its own page ("samples"), then
    every pair it is B of ("vs <A's folder name>")."""
    folder = run / PAGE_FOLDER
    pages = [("samples", folder / PAGE_FILE)] if (folder / PAGE_FILE).is_file() else []
    if folder.is_dir():
        pages += [(f"vs {p.parent.name.removeprefix(PAIR_PREFIX)}", p)
                  for p in sorted(folder.glob(f"{PAIR_PREFIX}*/{PAGE_FILE}")) if p.is_file()]
    return pages


def relative_href(target: Path, start: Path) -> str:
    """A URL path from the folder `start` to `target`, each segment percent-encoded (a relative link)."""
    rel = os.path.relpath(Path(target).resolve(), Path(start).resolve())
    return "/".join(quote(part) for part in Path(rel).parts)


def markdown_links(table, out_dir: str | Path) -> str:
    """A Markdown section linking every run row of a report table (its `run` column) to its pages, relative to
    the folder the table is written to; '' when no row's run has one."""
    lines = []
    for row in table.to_dict("records") if "run" in table else []:
        if not isinstance(row.get("run"), str) or not row["run"]:
            continue
        pages = existing_pages(Path(row["run"]))
        if pages:
            links = ", ".join(f"[{label}]({relative_href(page, out_dir)})" for label, page in pages)
            lines.append(f"- {row['model_label']}, {row['label']}: {links}")
    if not lines:
        return ""
    return "\n".join(["", "### Per-sample pages (`omiti2v browse`)", "", *dict.fromkeys(lines), ""])
