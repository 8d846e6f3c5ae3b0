"""Claims: launches on one run folder share the samples (each once), stale claims are taken over."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from omiti2v.claims import Claims, ClaimSettings, claimed_batches
from omiti2v.runs import read_jsonl
from omiti2v.video import read_video

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
HOLDER = """
import sys, time
from omiti2v.claims import Claims, ClaimSettings
claims = Claims(sys.argv[1], "unit", ClaimSettings(stale_after_s=float(sys.argv[2])))
assert claims.try_claim("s1")
print("held", flush=True)
time.sleep(120)
"""


def start_holder(folder: Path, stale_after_s: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(stale_after_s)], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_claim_is_exclusive_and_released(tmp_path):
    with Claims(tmp_path, "unit") as first, Claims(tmp_path, "unit") as second:
        assert first.try_claim("s1") and not second.try_claim("s1")
        assert first.path("s1").is_file() and f"pid={os.getpid()}" in first.path("s1").read_text()
        first.release("s1")
        assert not first.path("s1").exists() and second.try_claim("s1")
    assert not (tmp_path / ".claims" / "unit" / "s1.claim").exists()  # leaving the context releases
    assert Claims(tmp_path, "unit").path("a/b c") != Claims(tmp_path, "unit").path("a_b_c")


def test_a_live_owner_keeps_its_claim_by_heartbeat(tmp_path):
    holder = start_holder(tmp_path, 1.0)
    try:
        claims = Claims(tmp_path, "unit", ClaimSettings(stale_after_s=1.0))
        deadline = time.monotonic() + 2.5  # over twice the stale age: only the heartbeat keeps it
        while time.monotonic() < deadline:
            assert not claims.try_claim("s1")
            time.sleep(0.2)
    finally:
        stop(holder)


def test_a_silent_owner_is_taken_over_after_stale_after_s(tmp_path, caplog):
    holder = start_holder(tmp_path, 1.0)
    holder.send_signal(signal.SIGSTOP)  # alive, but its heartbeat stands still
    try:
        claims = Claims(tmp_path, "unit", ClaimSettings(stale_after_s=1.0))
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="omiti2v.claims"):
            while not claims.try_claim("s1"):
                assert time.monotonic() - started < 10, "a silent claim was never taken over"
                time.sleep(0.1)
        assert time.monotonic() - started >= 0.9
        assert claims.takeovers == [{"key": "s1", "pid": holder.pid, "host": claims.takeovers[0]["host"],
                                     "reason": "no heartbeat for 1s"}]
        assert f"took over from pid {holder.pid}" in caplog.text
    finally:
        stop(holder)


def test_a_dead_owner_on_this_host_is_taken_over_at_once(tmp_path):
    holder = start_holder(tmp_path, 300.0)
    stop(holder)
    claims = Claims(tmp_path, "unit", ClaimSettings(stale_after_s=300.0))
    assert claims.try_claim("s1")
    assert claims.takeovers[0]["pid"] == holder.pid and claims.takeovers[0]["reason"] == "its process is gone"


def test_a_claim_a_killed_launch_left_empty_is_taken_over_once_stale(tmp_path):
    """Killed between creating its claim file and writing it, a launch leaves an empty file that filelock never
    expires: empty for ABANDONED_MARKER_S it is taken over (and noted), well before stale_after_s; a fresh one is
    respected."""
    claims = Claims(tmp_path, "unit", ClaimSettings(stale_after_s=300.0))
    claims.path("s1").parent.mkdir(parents=True)
    claims.path("s1").touch()
    assert not claims.try_claim("s1")
    os.utime(claims.path("s1"), (time.time() - 60,) * 2)
    assert claims.try_claim("s1")
    assert claims.takeovers == [{"key": "s1", "pid": None, "host": None,
                                 "reason": "its owner never finished writing it"}]
    assert claims.path("s1").stat().st_size > 0


def test_claimed_batches_skip_others_then_wait_for_them(tmp_path):
    other = Claims(tmp_path, "unit")
    assert other.try_claim("b")
    mine = Claims(tmp_path, "unit", ClaimSettings(poll_s=0.05))
    seen, finished_elsewhere = [], set()

    def settled(keys):
        return finished_elsewhere & set(keys)

    for batch in claimed_batches(mine, ["a", "b", "c", "d"], 2, str, settled):
        seen.append(batch)
        if batch == ["a", "c"]:  # the other launch finishes "b" while this one works
            finished_elsewhere.add("b")
            other.release("b")
    assert seen == [["a", "c"], ["d"]]
    assert not mine.held


def smoke_generate(results: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "runners" / "generate.py"), "--config-name", "smoke", f"results_root={results}",
            "device=cpu", *overrides]


def run_dir(results: Path) -> Path:
    return results / "runs" / "mini" / "wan2.1-tiny" / "scalar-paper"


def launch_together(cmds: list[list[str]]) -> list[subprocess.Popen]:
    return [subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for cmd in cmds]


def finish(procs: list[subprocess.Popen]) -> list[str]:
    """Each launch's output (Hydra logs to stdout), once it exited 0."""
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
        outputs.append(out)
    return outputs


def assert_each_sample_once(run: Path, ids: list[str]) -> None:
    records = list(read_jsonl(run / "generation.jsonl"))
    assert Counter(r["sample_id"] for r in records) == Counter(ids), "a sample was generated twice or never"
    assert all(r["status"] == "ok" for r in records)
    for rec in records:
        frames, info = read_video(run / rec["video"])
        assert len(frames) == info.num_frames == rec["video_frames"] == 5
    assert not list((run / ".claims").rglob("*.claim")), "claims left behind"


@pytest.mark.slow
@pytest.mark.parametrize("launches", [2, 3])
def test_concurrent_generation_makes_each_sample_once(tmp_path, launches):
    procs = launch_together([smoke_generate(tmp_path, "data.limit=8")] * launches)
    finish(procs)
    assert_each_sample_once(run_dir(tmp_path), [f"mini_{k}" for k in range(8)])


@pytest.mark.slow
def test_concurrent_judges_judge_each_question_once(tmp_path):
    subprocess.run(smoke_generate(tmp_path, "data.limit=6"), cwd=REPO, env=ENV, check=True, capture_output=True)
    judge = [sys.executable, str(REPO / "runners" / "judge.py"), "--config-name", "smoke", f"results_root={tmp_path}",
             "device=cpu", "data.limit=6", "judge.batch_samples=1"]
    finish(launch_together([judge, judge]))
    records = list(read_jsonl(run_dir(tmp_path) / "judge.jsonl"))
    keys = Counter((r["sample_id"], r["question_id"], r["mode"]) for r in records)
    assert len(keys) == 16 and set(keys.values()) == {1}  # 16 questions in mini_0..5, each once
    assert {mode for *_, mode in keys} == {"official"}  # the profile's judge mode
    assert all(r["error"] is None and r["video_sha256"].startswith("sha256:") for r in records)


def holds_a_claim(run: Path, proc: subprocess.Popen) -> bool:
    claims = list((run / ".claims" / "generate").glob("*.claim")) if run.is_dir() else []
    return any(f"pid={proc.pid}\n" in (text := _read(p)) and "\nstart=" in text for p in claims)  # complete


def wait_until(condition, what: str, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, what
        time.sleep(0.005)


@pytest.mark.slow
def test_a_killed_launch_leaves_a_claim_the_survivor_takes_over(tmp_path):
    run = run_dir(tmp_path)
    (victim,) = launch_together([smoke_generate(tmp_path, "data.limit=8")])
    survivor = None
    try:
        def victim_frozen_holding_a_claim() -> bool:
            assert victim.poll() is None, "the victim ended before it claimed a sample"
            victim.send_signal(signal.SIGSTOP)
            if holds_a_claim(run, victim):
                return True
            victim.send_signal(signal.SIGCONT)
            return False

        wait_until(victim_frozen_holding_a_claim, "the victim never claimed a sample")
        (survivor,) = launch_together([smoke_generate(tmp_path, "data.limit=8")])  # while the victim is mid-run
        wait_until(lambda: holds_a_claim(run, survivor) or survivor.poll() is not None, "the survivor never started")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    (out,) = finish([survivor])
    assert f"took over from pid {victim.pid}" in out and "(its process is gone)" in out
    assert_each_sample_once(run, [f"mini_{k}" for k in range(8)])
    rerun = subprocess.run(smoke_generate(tmp_path, "data.limit=8"), cwd=REPO, env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0 and "8 done, 0 to do" in rerun.stdout
    assert not [p for p in (run / "videos").iterdir() if p.name.startswith(".")]  # the victim's temp files are gone
    assert json.loads((run / "videos" / "mini_0.json").read_text())["status"] == "ok"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
