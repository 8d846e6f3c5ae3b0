"""The leaderboard: full-benchmark entries plus the paper's rows ranked by overall score, smoke runs and subsets
in a separate unranked section, as CSV and one static, self-contained HTML page (inline CSS and a small sorting
script; no network).

Entries are untrusted files: each is parsed with bounds (omiti2v.safeload), checked against the schema and the
cross-field rules, and skipped with a warning naming it when it breaks any; CSV cells are neutralised against
spreadsheet formula injection. Entries re-judged by other judges (their optional `judges`) add per-judge columns:
`<metric>@<judge>` for the semantic metrics in the CSV, each judge's Overall on the page."""

from __future__ import annotations

import functools
import html
import json
import logging
import math
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pandas as pd

from ..browse import PAGE_FILE, PAGE_FOLDER, relative_href
from ..paths import UnsafePathError, confined
from ..report.paper import AVERAGES, PAPER_DIR, RERUN, TITLES, average, load_paper, rerun_source, rerun_spread
from ..report.runs import JUDGE_METRICS, coverage
from ..runs import atomic_write_text
from ..safeload import ParseError, read_json

log = logging.getLogger(__name__)

RERUN_LABEL = "authors' re-run"
COLUMNS = ("overall", "modification", "addition", "deletion", "semantic_avg", "dynamic_degree", "aesthetic_quality",
           "tool_avg")
MAX_ENTRY_BYTES = 1 << 20
# OWASP CSV injection: a cell starting with one of these is a formula to a spreadsheet.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@functools.cache
def entry_schema() -> dict:
    return json.loads(resources.files("omiti2v.schemas").joinpath("leaderboard_entry.schema.json").read_text())


def _schema_problems(instance, schema: dict, source: str, prefix: str = "") -> list[str]:
    import jsonschema

    problems = []
    for e in sorted(jsonschema.Draft202012Validator(schema).iter_errors(instance), key=lambda e: list(e.path)):
        field = ".".join(map(str, [*([prefix] if prefix else []), *e.path])) or "<root>"
        inner = [c for c in (e.context or []) if c.validator not in ("type", "oneOf", "allOf")]
        cause = e if e.validator == "pattern" or not inner else inner[0]
        if cause.validator == "pattern" and "\\u200b" in str(cause.validator_value):  # the text rule
            message = "must be printable text without control, bidi-override or zero-width characters"
        elif cause.validator == "pattern":
            message = f"{str(cause.instance)[:60]!r} does not match {cause.validator_value}"
        else:
            message = cause.message if len(cause.message) <= 200 else cause.message[:197] + "..."
        problems.append(f"{source}: field '{field}': {message}")
    return problems


def _non_finite(value, path: str = "") -> list[str]:
    """Fields holding NaN or +-Infinity (schemas compare them with nothing, so they pass `minimum`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "<root>"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}.{i}" if path else str(i))]
    return []


def entry_problems(entry, source: str = "entry") -> list[str]:
    """Every way `entry` breaks the schema or the rules it cannot express: finite numbers, lo <= value <= hi."""
    problems = _schema_problems(entry, entry_schema(), source)
    problems += [f"{source}: field '{p}': must be a finite number" for p in _non_finite(entry)]
    if not problems:
        cells = [(f"metrics.{m}", c) for m, c in entry["metrics"].items()]
        cells += [(f"judges.{j}.metrics.{m}", c) for j, judged in (entry.get("judges") or {}).items()
                  for m, c in judged["metrics"].items()]
        for field, cell in cells:
            value, ci = cell["value"], cell["ci95"]
            if ci is None or value is None:
                continue
            slack = 1e-6 * max(1.0, abs(value))  # the mean and its bootstrap percentiles are rounded apart
            if not ci[0] - slack <= value <= ci[1] + slack:
                problems.append(f"{source}: field '{field}.ci95': {ci} must satisfy lo <= value ({value}) <= hi")
    return problems


def submission_problems(metadata, source: str) -> list[str]:
    """The entry schema's rules for submission.yaml, so `--validate-only` and the full submit agree."""
    schema = entry_schema()
    return _schema_problems(metadata, {"$defs": schema["$defs"], **schema["properties"]["submission"]}, source)


def validate_entry(entry: dict, source: str = "entry") -> None:
    """Raise ValueError naming the file and field when an entry breaks the schema or its cross-field rules."""
    problems = entry_problems(entry, source)
    if problems:
        raise ValueError("\n".join(problems))


def load_entries(entries_dir: Path) -> list[dict]:
    """Valid entries; a broken one is skipped with a warning naming the file and the reason, so one bad file
    (huge, deep, not JSON, a link out of the folder, off-schema) never hides the rest."""
    entries = []
    for path in sorted(entries_dir.glob("*.json")):
        try:
            entry = read_json(confined(entries_dir, path.name), max_bytes=MAX_ENTRY_BYTES)
            problems = entry_problems(entry, str(path))
        except (ParseError, UnsafePathError) as exc:
            problems = [str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"]
        if problems:
            log.warning("skipping leaderboard entry %s", problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
            continue
        entries.append(entry)
    return entries


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with a quote (OWASP)."""
    def neutral(value):
        return "'" + value if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS) else value

    return frame.map(neutral)


def _cell_columns(key: str, cell: dict | None) -> dict:
    cell = cell or {}
    ci = cell.get("ci95") or [None, None]
    return {key: cell.get("value"), f"{key}_ci_low": ci[0], f"{key}_ci_high": ci[1], f"{key}_n": cell.get("n", 0)}


def extra_judges(entries: list[dict]) -> list[str]:
    """The other judges any entry was re-judged by, sorted."""
    return sorted({j for e in entries for j in e.get("judges") or {}})


def leaderboard_frame(entries: list[dict], paper: pd.DataFrame | None, root: Path | None = None) -> pd.DataFrame:
    """`root`: the leaderboard folder, where an entry's per-sample page (`omiti2v browse`) is looked for."""
    judges = extra_judges(entries)
    rows = []
    for e in entries:
        row = {"kind": "submission", "name": e["name"], "model": e["submission"]["model"], "method": e["submission"]["method"],
               "data": e["data"]["name"], "smoke": e["smoke"], "comparable": e["comparable"], "created": e["created"],
               "contact": e["submission"]["contact"], "dataset": dataset_link(e),
               "coverage": coverage(e["data"].get("source"), e["data"].get("n_samples"), bool(e["smoke"])),
               "browse": browse_href(root, e["run_dir"]) if root is not None else ""}
        for m in COLUMNS:
            row.update(_cell_columns(m, e["metrics"].get(m)))
        for key, (_, components) in AVERAGES.items():  # computed: a value without CI or n
            row.update({key: average(row, components), f"{key}_n": None})
        for j in judges:
            cells = ((e.get("judges") or {}).get(j) or {}).get("metrics") or {}
            for m in JUDGE_METRICS:
                key = f"{m}@{j}"
                row.update(_cell_columns(key, cells[m]) if m in cells else dict.fromkeys(_cell_columns(key, None)))
        rows.append(row)
    if paper is not None:
        # the paper's main table, and beside it the authors' own re-run (the second reference)
        for p in paper[paper["table"].isin(["main", RERUN])].to_dict("records"):
            rerun = p["table"] == RERUN
            row = {"kind": "reference" if rerun else "paper",
                   "name": f"{RERUN_LABEL if rerun else 'paper'}: {p['method']}", "model": p["model"],
                   "method": p["asm"], "data": "omiti2v", "smoke": False, "comparable": True, "created": "",
                   "contact": "", "dataset": "", "coverage": "full"}
            for m in COLUMNS:
                row.update({m: p.get(m), f"{m}_ci_low": None, f"{m}_ci_high": None, f"{m}_n": None})
            rows.append(row)
        for p in paper[paper["table"] == "newer_baselines"].to_dict("records"):  # listed, no paper numbers
            row = {"kind": "unreported", "name": f"{p['method']} (not in the paper)", "model": p["model"],
                   "method": p["asm"], "data": "omiti2v", "smoke": False, "comparable": True, "created": "",
                   "contact": "", "dataset": "", "coverage": "full"}
            row.update({k: None for m in COLUMNS for k in (m, f"{m}_ci_low", f"{m}_ci_high", f"{m}_n")})
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Only full-benchmark entries are ranked; smoke runs and subsets follow in their own section, unranked.
    frame["section"] = frame["coverage"].map(lambda c: "ranked" if c == "full" else "unranked")
    frame = frame.sort_values(["section", "overall"], ascending=[True, False], na_position="last",
                              kind="stable").reset_index(drop=True)
    ranked = frame["section"] == "ranked"
    frame.insert(0, "rank", pd.Series(range(1, int(ranked.sum()) + 1), index=frame.index[ranked], dtype="Int64"))
    return frame


def dataset_link(entry: dict) -> str:
    """The entry's exported evidence: its Hub page when pushed, else the local export folder, else ''."""
    dataset = entry.get("dataset") or {}
    if dataset.get("repo_id"):
        return f"https://huggingface.co/datasets/{dataset['repo_id']}"
    return dataset.get("path") or ""


def browse_href(root: Path, run_dir: str) -> str:
    """The link, relative to the leaderboard page, to the entry's per-sample page where it was built; else ''."""
    try:
        page = confined(root, *run_dir.split("/"), PAGE_FOLDER, PAGE_FILE)
    except UnsafePathError:
        return ""
    return relative_href(page, root) if page.is_file() else ""


def _is_num(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _cell_html(row: dict, metric: str) -> str:
    value = row[metric]
    if not _is_num(value):
        return '<td class="num" data-value=""></td>'
    text = f"{value:.2f}"
    if metric == "overall" and row["kind"] in ("paper", "reference"):
        text += "<sup>†</sup>"
    if _is_num(row[f"{metric}_ci_low"]):
        text += f'<span class="ci">[{row[f"{metric}_ci_low"]:.2f}, {row[f"{metric}_ci_high"]:.2f}] n={int(row[f"{metric}_n"])}</span>'
    return f'<td class="num" data-value="{value:.6f}">{text}</td>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f4f4f4;user-select:none;white-space:nowrap}
th[aria-sort=descending]::after{content:" \\25BC"}th[aria-sort=ascending]::after{content:" \\25B2"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ci{display:block;color:#777;font-size:.75rem}
tr.paper{background:#f8f8ff;color:#445}
tr.reference{background:#f4fbf4;color:#454}
.tag{font-size:.7rem;border-radius:3px;padding:0 .3rem;background:#fde2e2;color:#900}
"""

# Sorts each table's body by the clicked column: numbers by data-value (empty cells last), text by content.
SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  function key(row, i, numeric) {
    var cell = row.cells[i];
    if (!numeric) { return cell.textContent.trim().toLowerCase(); }
    var v = cell.getAttribute('data-value');
    return v === '' || v === null ? null : parseFloat(v);
  }
  function sortBy(i) {
    var th = headers[i];
    var numeric = th.getAttribute('data-type') === 'number';
    var dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending'
            : th.getAttribute('aria-sort') === 'ascending' ? 'descending'
            : (numeric ? 'descending' : 'ascending');
    var sign = dir === 'ascending' ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i, numeric), y = key(b, i, numeric);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return x < y ? -sign : x > y ? sign : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < headers.length; j++) { headers[j].removeAttribute('aria-sort'); }
    th.setAttribute('aria-sort', dir);
  }
  for (var i = 0; i < headers.length; i++) {
    headers[i].addEventListener('click', sortBy.bind(null, i));
  }
});
"""


def _name_html(row: dict) -> str:
    name = html.escape(str(row["name"]))
    link = row.get("dataset")
    if isinstance(link, str) and link.startswith("https://"):
        name = f'<a href="{html.escape(link)}" title="per-sample evidence (Hugging Face dataset)">{name}</a>'
    browse = row.get("browse")
    if isinstance(browse, str) and browse:
        name += f' <a class="browse" href="{html.escape(browse)}" title="every sample: videos, questions, verdicts">samples</a>'
    return name


def _table_html(rows: list[dict], table_id: str, judges: list[str] = ()) -> str:
    esc = html.escape
    head = ['<th data-type="number">#</th>', '<th data-type="text">Name</th>', '<th data-type="text">Model</th>',
            '<th data-type="text">Method</th>', '<th data-type="text">Data</th>']
    head += [f'<th data-type="number" data-metric="{m}">{esc(TITLES[m])}</th>' for m in COLUMNS]
    head += [f'<th data-type="number" data-metric="overall@{esc(j)}">{esc(TITLES["overall"])} ({esc(j)})</th>'
             for j in judges]
    body = []
    for row in rows:
        tags = ('<span class="tag">smoke</span>' if row["smoke"] else "") + (
            '<span class="tag">subset</span>' if row["coverage"] == "subset" else "") + (
            '<span class="tag">not comparable</span>' if not row["comparable"] and not row["smoke"] else "")
        rank = "" if pd.isna(row["rank"]) else str(int(row["rank"]))
        cells = [f'<td class="num" data-value="{rank}">{rank}</td>',
                 f'<td>{_name_html(row)} {tags}</td>', f'<td>{esc(str(row["model"]))}</td>',
                 f'<td>{esc(str(row["method"]))}</td>', f'<td>{esc(str(row["data"]))}</td>']
        cells += [_cell_html(row, m) for m in COLUMNS]
        cells += [_cell_html(row, f"overall@{j}") for j in judges]
        body.append(f'<tr class="{esc(row["kind"])}">' + "".join(cells) + "</tr>")
    return (f'<table class="board" id="{table_id}">\n<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table>")


def reference_html(source: str | None, spread: float | None) -> str:
    """The second reference explained: what it is, where it comes from, and what it means for a reproduction."""
    if source is None:
        return ""
    esc = html.escape
    gap = f"up to {spread:.1f} points" if spread is not None else "a few points"
    where = f'<a href="{esc(source)}">their repository</a>' if source.startswith("https://") else esc(source)
    return (f"\n<p>Green rows: the AlignVid authors' own independent full-OmitI2V re-run with their released code "
            f"({where}), beside the paper's rows. It differs from the paper by {gap} per category: "
            "that spread between two runs of the official procedure is what a reproduction "
            "should be judged against. Semantic Avg.: the mean of the three categories; Tool Avg.: the mean of "
            "Dynamic Degree and Aesthetic Quality (computed, without a CI).</p>")


def render_html(frame: pd.DataFrame, generated: str, reference: str = "") -> str:
    esc = html.escape
    records = frame.to_dict("records")
    judges = list(dict.fromkeys(c.removeprefix("overall@") for c in frame.columns
                                if c.startswith("overall@") and f"{c}_n" in frame.columns))
    ranked = _table_html([r for r in records if r["section"] == "ranked"], "leaderboard", judges)
    others = [r for r in records if r["section"] != "ranked"]
    unranked = "" if not others else (
        "<h2>Not ranked: smoke runs and subsets</h2>\n<p>These entries do not cover the full benchmark (tiny test "
        "models, or fewer samples), so their numbers cannot be compared with the ranked ones.</p>\n"
        + _table_html(others, "unranked", judges))
    rejudged = "" if not judges else (
        "\n<p>Overall (<i>judge</i>): the same videos judged by another judge (<code>omiti2v rejudge</code>), "
        "its category scores in leaderboard.csv; the ranking stays by the entry's own judge.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OmitI2V leaderboard</title>
<style>{STYLE}</style></head>
<body>
<h1>OmitI2V leaderboard</h1>
<p>Scores in percent; small print: 95 % percentile-bootstrap CI over samples and n. Ranked: entries on the full
benchmark, ordered by Overall (VQA accuracy, macro over samples). Shaded rows: the paper's numbers (AlignVid,
arXiv 2512.01334) for reference; <sup>†</sup> their Overall is derived from the category scores weighted by the
benchmark's category shares. Click a column header to sort.</p>{reference}{rejudged}
{ranked}
{unranked}
<p><small>Generated {esc(generated)} by omiti2v.</small></p>
<script>{SCRIPT}</script>
</body></html>
"""


def rebuild_leaderboard(root: str | Path, paper_dir: str | Path | None = PAPER_DIR) -> tuple[Path, Path]:
    """Rewrite <root>/leaderboard.csv and <root>/index.html from <root>/entries/*.json."""
    root = Path(root)
    paper = None
    if paper_dir is not None:
        try:
            paper = load_paper(paper_dir)
        except FileNotFoundError as exc:
            log.warning("%s; the leaderboard shows no paper rows", exc)
    frame = leaderboard_frame(load_entries(root / "entries"), paper, root)
    reference = "" if paper is None else reference_html(rerun_source(paper), rerun_spread(paper))
    csv_path = atomic_write_text(root / "leaderboard.csv", csv_safe(frame).to_csv(index=False))
    html_path = atomic_write_text(root / "index.html", render_html(frame, datetime.now(UTC).isoformat(timespec="seconds"),
                                                                   reference))
    return csv_path, html_path
