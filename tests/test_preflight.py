"""Preflight: with the generator present (a tiny pipeline saved with save_pretrained) and the judge missing, the
run exits 2 before generating anything, naming the judge checkpoint and its key; scorer weights, an unwritable
results root and a full disk are reported in the same message; a stage with nothing left to do loads no model.
The hub is asked, never trusted: one that refuses, hangs or lacks a repository makes every item not on this
machine a line of the same message (a local port or a local HTTP server stands in for it: no network)."""

import json
import math
import shutil
import socket
import threading
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import pytest
from hydra import compose, initialize_config_dir

from omiti2v import preflight as preflight_module
from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.judge import stage as judge_stage
from omiti2v.judge.model import JudgeWeightsError
from omiti2v.models import get_baseline
from omiti2v.pipeline import run_stages
from omiti2v.preflight import Hub, PreflightError
from omiti2v.runs import RunDir, append_jsonl

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_generator(tmp_path_factory) -> Path:
    """A Wan2.1-architecture pipeline at toy size, saved as a local checkpoint folder."""
    wan = get_baseline("wan2.1")
    folder = tmp_path_factory.mktemp("wan-local")
    wan.build(wan.settings({"weights": "tiny", "dtype": "float32"})).save_pretrained(folder)
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["data=mini", "device=cpu", *overrides])


def test_missing_judge_stops_the_run_before_generation(saved_generator, offline, tmp_path):
    """In process (the runner turns the SetupError into these lines and exit 2: test_config_check)."""
    cfg = config("model=wan2.1", f"model.checkpoint={saved_generator}", "judge=qwen2.5-vl-7b", "scorer=tiny",
                 f"results_root={tmp_path}")
    with pytest.raises(PreflightError) as err:
        run_stages(cfg)
    assert f"error: {err.value}".splitlines() == [
        "error: preflight: 1 problem(s) before any stage runs",
        "error: judge checkpoint judge.model='Qwen/Qwen2.5-VL-7B-Instruct' is missing (HF_HUB_OFFLINE is set and it "
        "is not in the Hugging Face cache): `hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir DIR`, then judge.model=DIR",
        "error: (after fixing, rerun; experts can skip these checks with preflight=false)",
    ]
    run = tmp_path / "runs" / "mini" / "wan2.1" / "scalar-paper"
    assert not (run / "videos").exists() and not (run / "generation.jsonl").exists()


def test_every_missing_item_in_one_message(offline, tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cfg = config("model=framepack", "scorer=vbench", "scorer.allow_download=false", f"scorer.weights_dir={tmp_path / 'w'}",
                 f"results_root={not_a_dir}/results")
    with pytest.raises(PreflightError) as err:
        run_stages(cfg)
    lines = str(err.value).split("\nerror: ")
    assert lines[0] == "preflight: 9 problem(s) before any stage runs"
    for key in ("model.checkpoint='hunyuanvideo-community/HunyuanVideo'", "model.transformer='lllyasviel/FramePackI2V_HY'",
                "model.image_encoder='lllyasviel/flux_redux_bfl'", "judge.model='Qwen/Qwen2.5-VL-32B-Instruct'"):
        assert sum(key in line and "hf download" in line for line in lines) == 1, key
    scorer_lines = [line for line in lines if line.startswith("scorer weights (scorer.weights_dir / OMITI2V_WEIGHTS)")]
    assert len(scorer_lines) == 4  # RAFT, CLIP ViT-L/14, the LAION head, MUSIQ
    assert any(line.startswith(f"results root {not_a_dir}/results/runs/mini/framepack/scalar-paper is not writable") for line in lines)


def test_disk_estimate_covers_the_planned_videos(saved_generator, offline, tmp_path, monkeypatch):
    cfg = config("model=wan2.1", f"model.checkpoint={saved_generator}", "judge=tiny", "scorer=tiny", f"results_root={tmp_path}")
    run = RunDir(tmp_path / "run")
    need = preflight_module.planned_video_bytes(cfg, run, load_benchmark("mini"))
    # 12 samples x 81 frames at up to 480x832 pixels
    assert 12 * 81 * 300_000 * preflight_module.VIDEO_BYTES_PER_PIXEL < need <= 12 * 81 * 399_360 * preflight_module.VIDEO_BYTES_PER_PIXEL
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need, 0, need - 1))
    with pytest.raises(PreflightError, match=r"not enough free disk for the planned videos .* about \d+\.\d GB needed"):
        run_stages(cfg, ["generate"])
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need, 0, need))
    assert preflight_module.preflight(cfg, ["generate"], run.path).ids == load_benchmark("mini").ids


def test_preflight_false_skips_the_checks(offline, tmp_path):
    cfg = config("judge=qwen2.5-vl-7b", f"results_root={tmp_path}")
    with pytest.raises(PreflightError, match="judge.model"):
        run_stages(cfg, ["judge"])
    cfg.preflight = False  # the expert's way: the judge stage starts and its loader is what fails
    with pytest.raises(JudgeWeightsError):
        run_stages(cfg, ["judge"])


def test_judge_not_loaded_when_everything_is_judged(tmp_path, monkeypatch):
    bench = load_benchmark("mini", limit=2)
    run = RunDir(tmp_path / "run")
    cfg = config("judge=tiny", "judge.mode=parity")
    append_jsonl(run.judge_log, [{"sample_id": s.id, "question_id": str(q.id), "mode": "parity", "judge_model": "tiny",
                                  "error": None} for s in bench for q in s.questions])

    def no_loading(*args, **kwargs):
        raise AssertionError("the judge was loaded with nothing to judge")

    monkeypatch.setattr(judge_stage, "load_judge_model", no_loading)
    monkeypatch.setattr("omiti2v.testing.tiny_judge.build_tiny_judge", no_loading)
    judge_stage.run_judge(RunContext.from_config(cfg), run, bench)
    with pytest.raises(AssertionError, match="nothing to judge"):
        judge_stage.run_judge(RunContext.from_config(cfg), run, load_benchmark("mini", limit=3))  # one sample left: loads


@pytest.fixture
def online(monkeypatch, tmp_path):
    """The offline switches off (conftest sets them), an empty HF cache and weights folder: every item must come
    from the hub, which each test points at a local port."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv("OMITI2V_DATA", raising=False)


def refusing_endpoint() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}"


def test_unreachable_hub_makes_everything_not_on_disk_missing_in_one_message(online, monkeypatch, tmp_path):
    endpoint = refusing_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    cfg = config("data=omiti2v", "model=framepack", "judge=qwen2.5-vl-7b", "scorer=vbench",
                 f"scorer.weights_dir={tmp_path / 'w'}", f"results_root={tmp_path}")
    with pytest.raises(PreflightError) as err:
        preflight_module.preflight(cfg, ["generate", "judge", "score", "summary"], tmp_path / "run")
    lines = str(err.value).split("\nerror: ")
    assert lines[0] == (f"preflight: 9 problem(s) before any stage runs; the Hugging Face hub ({endpoint}) did not "
                        "answer (ConnectError within 5 s), so what is not on this machine counts as missing; set "
                        "HF_HUB_OFFLINE=1 to skip asking")
    assert lines[1].startswith("benchmark data.hf_id='AIPeanutman/OmitI2V' is missing (the hub did not answer")
    for key in ("model.checkpoint=", "model.transformer=", "model.image_encoder=", "judge.model="):
        assert sum(line.startswith(("generator checkpoint " + key, "judge checkpoint " + key)) for line in lines) == 1
    assert sum(line.startswith("scorer weights") for line in lines) == 4  # RAFT, CLIP ViT-L/14, LAION head, MUSIQ


class Hanging:
    """A TCP server that accepts connections and never answers; counts them."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.connections.append(self.server.accept()[0])
            except OSError:
                return

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def close(self):
        for conn in self.connections:
            conn.close()
        self.server.close()


def test_a_hub_that_hangs_costs_one_timeout(online, monkeypatch, tmp_path):
    hanging = Hanging()
    monkeypatch.setenv("HF_ENDPOINT", hanging.endpoint)
    cfg = config("model=framepack", "judge=qwen2.5-vl-7b", f"results_root={tmp_path}")
    hub = Hub(timeout=0.5)
    try:
        with pytest.raises(PreflightError) as err:
            preflight_module.preflight(cfg, ["generate", "judge"], tmp_path / "run", hub=hub)
    finally:
        hanging.close()
    assert len(hanging.connections) == 1  # four repositories, one question: the hub is not asked again
    assert "did not answer (ReadTimeout within 0.5 s)" in str(err.value).splitlines()[0]
    assert str(err.value).count("is missing (the hub did not answer") == 4


class FakeHub(BaseHTTPRequestHandler):
    """The hub's repository API: the repositories in `present` exist, any other is 404."""

    present: set[str] = set()
    asked: list[str] = []

    def do_GET(self):
        repo = self.path.split("/api/")[1].split("/", 1)[1].split("/revision")[0]
        type(self).asked.append(repo)
        found = repo in self.present
        body = json.dumps({"id": repo, "sha": "0" * 40} if found else {"error": "Repository not found"}).encode()
        self.send_response(200 if found else 404)
        if not found:
            self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_hub_that_answers_is_asked_about_each_repository(online, monkeypatch, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    FakeHub.present = {"hunyuanvideo-community/HunyuanVideo", "lllyasviel/FramePackI2V_HY", "lllyasviel/flux_redux_bfl",
                       "openai/clip-vit-large-patch14"}
    FakeHub.asked = []
    cfg = config("model=framepack", "judge=qwen2.5-vl-7b", "scorer=vbench", f"scorer.weights_dir={tmp_path / 'w'}",
                 f"results_root={tmp_path}")
    try:
        with pytest.raises(PreflightError) as err:
            preflight_module.preflight(cfg, ["generate", "judge", "score"], tmp_path / "run")
    finally:
        server.shutdown()
    lines = str(err.value).split("\nerror: ")
    assert lines[0] == "preflight: 1 problem(s) before any stage runs"  # the hub answered: no note about it
    assert lines[1].startswith("judge checkpoint judge.model='Qwen/Qwen2.5-VL-7B-Instruct' is missing (no model "
                               "repository 'Qwen/Qwen2.5-VL-7B-Instruct' on the hub")
    assert sorted(FakeHub.asked) == sorted([*FakeHub.present, "Qwen/Qwen2.5-VL-7B-Instruct"])


def test_a_value_the_baseline_refuses_is_a_preflight_line(offline, tmp_path):
    cfg = config("model=wan2.1-tiny", "model.sampling.num_frames=6", "judge=tiny", "scorer=tiny",
                 f"results_root={tmp_path}")
    with pytest.raises(PreflightError) as err:
        preflight_module.preflight(cfg, ["generate"], tmp_path / "run")
    assert str(err.value).split("\nerror: ")[1] == "model.sampling.num_frames=6: must be 4k+1 (the VAE compresses time by 4)"


def hunyuan15_bucket(width: int, height: int, target: int, patch: int = 16) -> tuple[int, int]:
    """HunyuanVideo-1.5's bucket rule written out plainly (its data_utils: the staircase of (h, w) patch grids of
    at most (target/patch)^2 patches, aspect at most 4; the image's aspect rounded to the nearest bucket from
    the side that does not enlarge the short edge, the first bucket winning ties)."""
    budget = round((target / patch) ** 2)
    buckets, rows, cols = [], budget, 1
    while rows > 0:
        if max(rows, cols) / min(rows, cols) <= 4.0:
            buckets.append((rows * patch, cols * patch))
        rows, cols = (rows, cols + 1) if (cols + 1) * rows <= budget else (rows - 1, cols)
    aspect = height / width
    side = [(i, round(h / w, 5) - aspect) for i, (h, w) in enumerate(buckets)
            if (round(h / w, 5) - aspect <= 0 if aspect >= 1 else round(h / w, 5) - aspect >= 0)]
    return buckets[min(side, key=lambda pair: abs(pair[1]))[0]]


@pytest.mark.parametrize("size", [(832, 480), (480, 832), (1024, 1024), (640, 480), (1920, 800)])
def test_hunyuan15_sizing_is_the_pipelines_bucket_rule(size):
    from omiti2v.models import target_size

    for target in (480, 64):
        assert target_size({"mode": "hunyuan15_bucket", "target_size": target, "multiple": 16}, *size) == \
            hunyuan15_bucket(*size, target)


def test_hunyuan15_disk_estimate_of_the_documented_tiny_run(tmp_path):
    """`make eval MODEL=hunyuan-video-1.5-tiny` died here (an unknown sizing mode)."""
    cfg = config("model=hunyuan-video-1.5-tiny", "judge=tiny", "scorer=tiny", f"results_root={tmp_path}")
    bench = load_benchmark("mini")
    expected = sum(math.floor(5 * math.prod(hunyuan15_bucket(*s.resolution, 64)) * 0.2) for s in bench)
    assert preflight_module.planned_video_bytes(cfg, RunDir(tmp_path / "run"), bench) == expected
