"""Docs tables that restate the code are held equal to it: the models of docs/models.md to conf/model/, the
summary.json fields of docs/results-schema.md to the JSON schema, and the published GPU costs of
docs/performance.md to omiti2v/generate/published_costs.yaml and the GPU-hours `make reproduce` computes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from omiti2v.costs import published_costs
from omiti2v.models import model_settings

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def marked_rows(page: str, marker: str) -> list[list[str]]:
    """The cells of each body row of the table between <!-- marker:start --> and <!-- marker:end -->."""
    block = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", (DOCS / page).read_text(encoding="utf-8"),
                      flags=re.S)
    assert block, f"docs/{page}: no <!-- {marker}:start --> ... <!-- {marker}:end --> table"
    lines = block.group(1).strip().splitlines()[2:]  # header and separator
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))] for line in lines]


def test_the_models_table_is_the_configs():
    rows = {row[0].strip("`"): row for row in marked_rows("models.md", "models")}
    configs = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml") if not p.stem.endswith("-tiny"))
    assert sorted(rows) == configs, "docs/models.md: one row per conf/model/<name>.yaml (tiny variants aside)"
    for name, (_, _paper, checkpoint, frames, fps, steps) in rows.items():
        settings = model_settings(name)
        ids = re.findall(r"`([^`]+)`", checkpoint)
        assert ids == [settings["checkpoint"], *([settings["transformer"]] if settings.get("transformer") else [])], name
        sampling = settings["sampling"]
        assert (int(frames), float(fps), int(steps)) == (sampling["num_frames"], settings["fps"],
                                                        sampling["num_inference_steps"]), name


def schema_type(prop: dict) -> str:
    """How the fields table writes a property's type."""
    if "enum" in prop:
        return r" \| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "type" in prop:
        return " or ".join(prop["type"] if isinstance(prop["type"], list) else [prop["type"]])
    return " or ".join(schema_type(p) for p in prop.get("anyOf") or prop["oneOf"])


def test_the_summary_fields_table_is_the_schema():
    schema = json.loads((REPO / "omiti2v" / "schemas" / "summary.schema.json").read_text())
    rows = marked_rows("results-schema.md", "summary-fields")
    assert [row[0].strip("`") for row in rows] == list(schema["properties"]), "one row per property, schema order"
    for field, required, kind, meaning in rows:
        name = field.strip("`")
        assert required == ("yes" if name in schema["required"] else "no"), name
        assert kind == schema_type(schema["properties"][name]), name
        assert meaning, f"{name}: say what the field means"


def h100_row(label: str) -> str:
    """The figure cell of the H100 table row whose first cell starts with `label`."""
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    table = page.split("## One H100 80 GB", 1)[1].split("\n## ", 1)[0]
    cells = [line.strip().strip("|").split(" | ") for line in table.splitlines() if line.startswith(f"| {label}")]
    assert len(cells) == 1, f"docs/performance.md: one H100 row starting {label!r}"
    return cells[0][-1]


def test_the_h100_table_is_the_published_costs():
    costs = published_costs()
    assert costs["gpu"] == "H100 80 GB"
    wan, framepack = costs["models"]["wan2.1"], costs["models"]["framepack"]
    assert f"{2 * wan['seconds_per_forward']:.2f} s/step" in h100_row("planner, Wan2.1 scalar/paper at CFG 5.0")
    assert f"{framepack['seconds_per_forward']:.2f} s/step" in h100_row("planner, FramePack")
    assert f"energy ×{wan['asm_factor']['energy']:.3f}" in h100_row("ASM overhead, Wan2.1")
    assert f"energy ×{framepack['asm_factor']['energy']:.3f}" in h100_row("ASM overhead, FramePack")
    guidance = h100_row("guidance methods on Wan2.1")
    over_forwards = guidance.split("time over forwards", 1)[1]
    for method, factor in wan["guidance_factor"].items():
        assert re.search(rf"(?<![\w-]){re.escape(method)} ×{factor:.3f}", over_forwards), method


@pytest.mark.parametrize("table", ["main", "modulation", "schedule"])
def test_the_gpu_hours_are_what_reproduce_computes(table):
    """`make reproduce TABLE=… DRY_RUN=1`'s total, and with Wan2.1 at CFG 5.0 (twice the forwards of its
    guidance-1.0 runs) where the table states it."""
    from omiti2v.reproduce import plan_runs

    _, runs = plan_runs(table)
    measured = [r for r in runs if r.cost is not None and not r.refused]
    total = sum(r.cost.gpu_hours for r in measured)
    at_cfg5 = sum(r.cost.gpu_hours * (2 if r.model == "wan2.1" and r.cost.forwards_per_step == 1 else 1) for r in measured)
    cell = h100_row("GPU-hours of `make reproduce")
    stated = re.search(rf"\b{table} ([\d.]+) \((\d+) runs(?:; ([\d.]+))?", cell)
    assert stated, f"docs/performance.md: no GPU-hours for {table}"
    assert float(stated.group(1)) == round(total, 1) and int(stated.group(2)) == len(runs)
    if stated.group(3):
        assert float(stated.group(3)) == round(at_cfg5, 1)
