"""Builders of crafted (hostile) inputs: dataset roots, submission folders and zips, videos, images and
leaderboard entries. Each builder returns cases (name, path, expected message pattern, expected exit code)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from omiti2v.data import MINI_ROOT
from omiti2v.video import write_video

RECORD = json.loads((MINI_ROOT / "meta.json").read_text())[0]
IDS = [r["id"] for r in json.loads((MINI_ROOT / "meta.json").read_text())]
METADATA = {"model": "tiny-test", "method": "baseline", "parameters": {"steps": 2}, "contact": "a@b.c"}
MP4_START = b"\0\0\0\x18ftypisom"  # the first bytes of an MP4: an 'ftyp' box


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expected: str  # regular expression the output must match
    rc: int


# --- images and dataset roots ----------------------------------------------------------------------------------

def png_bytes(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose IHDR declares width x height (RGB, 8 bit) around the given IDAT payload."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write_raw_or_dumped(path: Path, content, dump) -> None:
    """Bytes and text go in as given (a crafted file), anything else as `dump(content)` (a well-formed one)."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else dump(content), encoding="utf-8")


def dataset_root(folder: Path, records: list | dict | str | bytes, image: bytes | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "images").mkdir()
    if image is None:
        shutil.copy(MINI_ROOT / RECORD["image-path"], folder / RECORD["image-path"])
    else:
        (folder / RECORD["image-path"]).write_bytes(image)
    write_raw_or_dumped(folder / "meta.json", records, json.dumps)
    return folder


def meta_cases(base: Path, outside: Path) -> list[Case]:
    """Benchmark copies for `omiti2v validate-data` (exit 1: invalid, 0: valid)."""
    def rec(**change):
        return [{**RECORD, **change}]

    def question(**change):
        return rec(questions=[{**RECORD["questions"][0], **change}, *RECORD["questions"][1:]])

    escape = "../" * 12 + str(outside / "ESCAPED").lstrip("/")
    raw_text = json.dumps(rec())
    specs = {
        "valid": (rec(), r": valid, 1 samples", 0),
        "id_traversal": (rec(id=escape), r"field 'id': not a safe file name", 1),
        "id_slash": (rec(id="a/b"), r"field 'id': not a safe file name.*'/'", 1),
        "id_backslash": (rec(id="a\\b"), r"field 'id': not a safe file name", 1),
        "id_dotdot": (rec(id=".."), r"field 'id': not a safe file name.*start with '\.'", 1),
        "id_absolute": (rec(id="/etc/passwd"), r"field 'id': not a safe file name", 1),
        "id_nul": (rec(id="mini\x000"), r"field 'id': not a safe file name", 1),
        "id_empty": (rec(id=""), r"field 'id': not a safe file name: empty", 1),
        "id_300_chars": (rec(id="a" * 300), r"field 'id': not a safe file name: 300 characters", 1),
        "id_hidden": (rec(id=".hidden"), r"must not start with '\.'", 1),
        "id_unicode": (rec(id="m\u00fcll"), r"field 'id': not a safe file name", 1),
        "id_bidi": (rec(id="a\u202egpj.mp4"), r"field 'id': not a safe file name", 1),
        "id_number": (rec(id=5), r"field 'id': must be str", 1),
        "id_case_duplicate": ([RECORD, {**RECORD, "id": RECORD["id"].upper()}], r"duplicate id", 1),
        "id_trailing_dot": ([RECORD, {**RECORD, "id": RECORD["id"] + "."}], r"must not end with '\.'", 1),
        "id_windows_device": (rec(id="CON"), r"CON is a device name on Windows", 1),
        "id_windows_device_ext": (rec(id="aux.1"), r"aux is a device name on Windows", 1),
        "empty_list": ([], r"holds no records", 1),
        "too_many_questions": (rec(questions=[{**RECORD["questions"][0], "id": f"q{i}"} for i in range(65)]),
                               r"65 questions \(at most 64, OMITI2V_MAX_QUESTIONS\)", 1),
        "question_id_traversal": (question(id="../q"), r"questions\[0\]\.id': not a safe file name", 1),
        "question_id_case_dup": (rec(questions=[{**RECORD["questions"][0], "id": "Q"}, {**RECORD["questions"][1], "id": "q"}]),
                                 r"duplicate question id", 1),
        "huge_int": (raw_text.replace('"resolution": [320', '"resolution": [' + "9" * 5001), r"integer with 5001 digits", 1),
        "deep_nesting": ("[" * 100_000 + "]" * 100_000, r"nested deeper than 64", 1),
        "nan": (raw_text.replace('"resolution": [320', '"resolution": [NaN'), r"NaN is not JSON", 1),
        "infinity": (raw_text.replace('"resolution": [320', '"resolution": [1e999'), r"out of range", 1),
        "duplicate_key": (raw_text.replace('{"id": "mini_0"', '{"id": "mini_0", "id": "x"'), r"duplicate key 'id'", 1),
        "not_a_list": ({"id": "x"}, r"top level must be a JSON list", 1),
        "not_utf8": (b"[\xff\xfe]", r"not UTF-8", 1),
        "lone_surrogate": (raw_text.replace('"prompt": "', '"prompt": "\\ud800'), r"lone surrogate", 1),
        "empty_file": ("", r"not valid JSON", 1),
        "huge_prompt": (rec(prompt="x" * 2_000_000), r": valid, 1 samples", 0),
        "image_parent": (rec(**{"image-path": "../outside.png"}), r"points outside the dataset root", 1),
        "image_absolute": (rec(**{"image-path": "/etc/passwd"}), r"points outside the dataset root", 1),
        "image_proc": (rec(**{"image-path": "/proc/self/environ"}), r"points outside the dataset root", 1),
        "image_nul": (rec(**{"image-path": "images/a\x00.png"}), r"points outside the dataset root", 1),
        "image_missing": (rec(**{"image-path": "images/none.png"}), r"image not found", 1),
        "image_is_folder": (rec(**{"image-path": "images"}), r"not a regular file", 1),
        "image_size_mismatch": (rec(resolution=[64, 64]), r"does not match the image size", 1),
    }
    cases = []
    for name, (records, expected, rc) in specs.items():
        cases.append(Case(name, dataset_root(base / name, records), expected, rc))
    images = {
        "image_bomb_header": (png_bytes(20000, 20000, zlib.compress(b"\0" * 1000)), r"decompression bomb|pixels, more than"),
        "image_garbage_pixels": (png_bytes(320, 192, os.urandom(4000)), r"unreadable image"),
        "image_truncated": ((MINI_ROOT / RECORD["image-path"]).read_bytes()[:300], r"unreadable image"),
        "image_not_an_image": (b"#!/bin/sh\necho hi\n", r"unreadable image"),
    }
    for name, (data, expected) in images.items():
        cases.append(Case(name, dataset_root(base / name, rec(), image=data), expected, 1))
    link = dataset_root(base / "image_symlink_out", rec())
    (link / RECORD["image-path"]).unlink()
    (link / RECORD["image-path"]).symlink_to(outside.parent / "secret.png")
    cases.append(Case(link.name, link, r"points outside the dataset root", 1))
    meta_link = dataset_root(base / "meta_symlink_out", rec())
    (meta_link / "meta.json").unlink()
    (meta_link / "meta.json").symlink_to(outside.parent / "secret.json")
    cases.append(Case(meta_link.name, meta_link, r"resolves outside", 1))
    fifo = dataset_root(base / "meta_fifo", rec())
    (fifo / "meta.json").unlink()
    os.mkfifo(fifo / "meta.json")
    cases.append(Case(fifo.name, fifo, r"meta.json: not a regular file \(a FIFO", 1))
    zero = dataset_root(base / "meta_symlink_dev_zero", rec())
    (zero / "meta.json").unlink()
    (zero / "meta.json").symlink_to("/dev/zero")
    cases.append(Case(zero.name, zero, r"meta.json': resolves outside", 1))
    cases.append(Case("parquet_bomb", parquet_bomb(base / "parquet_bomb"), r"decode to more than 64 MiB", 1))
    return cases


def parquet_bomb(folder: Path, rows: int = 40, image_bytes: int = 64 << 20) -> Path:
    """A datasets (Parquet) copy of a few KB whose rows each decode to a 64 MiB image: one dictionary value
    repeated, which Parquet stores once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    record = {k: v for k, v in RECORD.items() if k != "questions"}
    image = pa.StructArray.from_arrays(
        [pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([b"\0" * image_bytes])),
         pa.array([RECORD["image-path"]] * rows)], names=["bytes", "path"])
    columns = {k: pa.array([f"bomb_{i}" if k == "id" else v for i in range(rows)]) for k, v in record.items()}
    pq.write_table(pa.table({**columns, "questions": pa.array([RECORD["questions"]] * rows), "image": image}),
                   folder / "train.parquet", compression="zstd")
    return folder


# --- videos and submissions -------------------------------------------------------------------------------------

def encode(path: Path, frames: int, width: int, height: int, fps: float = 8) -> Path:
    """Black frames streamed into libx264 (ultrafast): large declared sizes at tiny cost."""
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def submission_folder(folder: Path, metadata: dict | str | bytes | None = METADATA) -> Path:
    folder.mkdir(parents=True)
    for i, sid in enumerate(IDS):
        pixels = np.random.default_rng(i).integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
        write_video(folder / f"{sid}.mp4", pixels, fps=8)
    if metadata is not None:
        write_raw_or_dumped(folder / "submission.yaml", metadata, yaml.safe_dump)
    return folder


def copy_of(valid: Path, dest: Path) -> Path:
    shutil.copytree(valid, dest)
    return dest


def zip_of(folder: Path, dest: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = (), skip=(),
           method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(dest, "w", method) as zf:
        for p in sorted(folder.iterdir()):
            if p.name not in skip:
                zf.write(p, p.name)
        for info, data in extra:
            zf.writestr(info, data)
    return dest


def patched(path: Path, signature: bytes, offset: int, value: bytes, last: bool = False) -> Path:
    """Overwrite bytes at `offset` after the first (or last) occurrence of a zip record signature."""
    data = bytearray(path.read_bytes())
    at = data.rfind(signature) if last else data.find(signature)
    data[at + offset:at + offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def submission_cases(base: Path, valid: Path) -> list[Case]:
    """Submissions for `omiti2v submit --validate-only` (exit 2: rejected, 0: valid)."""
    cases = [Case("valid_folder", valid, r"^valid: 12 videos", 0),
             Case("valid_zip", zip_of(valid, base / "valid.zip"), r"^valid: 12 videos", 0)]

    def zcase(name, expected, **kw):
        kw.setdefault("skip", {"mini_1.mp4"})  # the crafted member takes a video's place: the count stays valid
        cases.append(Case(name, zip_of(valid, base / f"{name}.zip", **kw), expected, 2))

    link = zipfile.ZipInfo("link.mp4")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    zcase("zip_slip", r"'\.\.' in a member path", extra=[("../evil.mp4", b"x")])
    zcase("zip_absolute", r"absolute path", extra=[("/tmp/evil.mp4", b"x")])
    zcase("zip_drive_letter", r"absolute path", extra=[("C:/evil.mp4", b"x")])
    zcase("zip_backslash", r"backslash", extra=[("..\\evil.mp4", b"x")])
    zcase("zip_control_name", r"file name .*not allowed", extra=[("a\nb.mp4", b"x")])
    zcase("zip_long_name", r"file name 300 characters", extra=[("a" * 296 + ".mp4", b"x")])
    zcase("zip_hidden_name", r"must not start with '\.'", extra=[(".evil.mp4", b"x")])
    zcase("zip_symlink", r"symlink in the archive", extra=[(link, b"/etc/passwd")])
    zcase("zip_nested", r"must sit at the top level", extra=[("a/b/c.mp4", b"x")])
    zcase("zip_too_many_members", r"members|too many files", extra=[(f"junk_{i}.txt", b"x") for i in range(40)])
    zcase("zip_ratio_bomb", r"compression ratio above", extra=[("bomb.mp4", MP4_START + b"\0" * (48 << 20))],
          skip={"mini_0.mp4"})
    junk = np.random.default_rng(0).integers(0, 4, 8 << 20, dtype=np.uint8).tobytes()  # deflates ~4x: under the ratio
    zcase("zip_junk_named_mp4", r"mini_0.mp4: not an MP4 video", extra=[("mini_0.mp4", junk)], skip={"mini_0.mp4"})
    zcase("zip_extra_id", r"too many files \(14 > 13.*\): unexpected mini_99.mp4",
          extra=[("mini_99.mp4", (valid / "mini_0.mp4").read_bytes())], skip=())
    zcase("zip_uppercase_suffix", r"MINI_1.MP4: names are '\{id\}.mp4' as the benchmark spells them \(did you mean "
          r"'mini_1.mp4'\?\)", extra=[("MINI_1.MP4", (valid / "mini_1.mp4").read_bytes())])
    zcase("zip_not_a_video", r"readme.txt: not a video", extra=[("readme.txt", b"hello")])
    liar = zip_of(valid, base / "zip_lying_sizes.zip", extra=[("mini_0.mp4", b"\0" * (8 << 20))], skip={"mini_0.mp4"})
    liar.write_bytes(liar.read_bytes().replace((8 << 20).to_bytes(4, "little"), (1024).to_bytes(4, "little")))
    cases.append(Case("zip_lying_sizes", liar, r"compression ratio|larger than|cannot be extracted", 2))
    damaged = zip_of(valid, base / "zip_damaged_stream.zip", extra=[("mini_0.mp4", bytes(range(256)) * 4000)],
                     skip={"mini_0.mp4"})
    with zipfile.ZipFile(damaged) as zf:
        info = zf.getinfo("mini_0.mp4")
    data = bytearray(damaged.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10:start + 60] = os.urandom(50)
    damaged.write_bytes(bytes(data))
    cases.append(Case("zip_damaged_stream", damaged, r"cannot be extracted", 2))
    method = zip_of(valid, base / "zip_unknown_method.zip")
    patched(method, b"PK\x03\x04", 8, struct.pack("<H", 99))
    cases.append(Case("zip_unknown_method", patched(method, b"PK\x01\x02", 10, struct.pack("<H", 99)),
                      r"cannot be extracted", 2))
    encrypted = patched(zip_of(valid, base / "zip_encrypted.zip"), b"PK\x01\x02", 8, struct.pack("<H", 1))
    cases.append(Case("zip_encrypted", encrypted, r"encrypted member", 2))
    count = patched(zip_of(valid, base / "zip_declares_65535.zip"), b"PK\x05\x06", 8, struct.pack("<HH", 0xFFFF, 0xFFFF), last=True)
    cases.append(Case("zip_declares_65535", count, r"65535 members listed", 2))
    truncated = base / "zip_truncated.zip"
    truncated.write_bytes((base / "valid.zip").read_bytes()[:5000])
    cases.append(Case("zip_truncated", truncated, r"not a readable zip archive \(no end-of-archive record", 2))
    truncated_unnamed = base / "zip_truncated_no_suffix"
    truncated_unnamed.write_bytes((base / "valid.zip").read_bytes()[:5000])
    cases.append(Case("zip_truncated_no_suffix", truncated_unnamed, r"not a readable zip archive", 2))
    empty = base / "zip_empty.zip"
    zipfile.ZipFile(empty, "w").close()
    cases.append(Case("zip_empty", empty, r"the archive holds no files", 2))
    zero_bytes = base / "zero_bytes.zip"
    zero_bytes.write_bytes(b"")
    cases.append(Case("zero_bytes", zero_bytes, r"an empty file \(0 bytes\)", 2))
    fifo = base / "fifo.zip"
    os.mkfifo(fifo)
    cases.append(Case("fifo", fifo, r"a FIFO \(named pipe\), not a folder or a \.zip", 2))
    cases.append(Case("dev_zero", Path("/dev/zero"), r"a character device, not a folder or a \.zip", 2))
    fifo_inside = copy_of(valid, base / "folder_with_fifo")
    os.mkfifo(fifo_inside / "extra.mp4")
    cases.append(Case("folder_with_fifo", fifo_inside, r"extra.mp4: not a regular file \(a FIFO", 2))
    text = base / "not_an_archive.tar"
    text.write_bytes(b"plain text")
    cases.append(Case("not_an_archive", text, r"folder or a \.zip archive", 2))

    def ycase(name, metadata, expected, rc=2):
        folder = copy_of(valid, base / name)
        target = folder / "submission.yaml"
        target.write_bytes(metadata) if isinstance(metadata, bytes) else target.write_text(metadata, encoding="utf-8")
        cases.append(Case(name, folder, expected, rc))

    ok = yaml.safe_dump(METADATA)
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    ycase("yaml_billion_laughs", laughs, r"anchors \('&a'\) are not allowed")
    ycase("yaml_deep_nesting", "parameters: " + "[" * 100_000 + "]" * 100_000, r"nested deeper than 64|larger than")
    ycase("yaml_deep_small", ok + "description: " + "[" * 5000 + "]" * 5000 + "\n", r"nested deeper than 64")
    ycase("yaml_duplicate_key", ok + "model: other\n", r"duplicate key 'model'")
    ycase("yaml_huge_int", ok.replace("steps: 2", "steps: " + "9" * 5001), r"integer with 5001 digits")
    ycase("yaml_nan", ok.replace("steps: 2", "steps: .nan"), r"non-finite number")
    ycase("yaml_bidi_model", ok.replace("tiny-test", "tiny\u202etset"), r"field 'model': must be printable text")
    ycase("yaml_zero_width_method", ok.replace("baseline", "base\u200bline"), r"field 'method': must be printable text")
    ycase("yaml_nul", ok.replace("model: tiny-test", 'model: "tiny\\0test"'), r"field 'model': must be printable text")
    ycase("yaml_too_large", ok + "description: " + "x" * 70_000 + "\n", r"larger than")
    ycase("yaml_not_mapping", "- a\n- b\n", r"must be a mapping")
    ycase("yaml_not_utf8", b"model: \xff\xfe\n", r"not UTF-8")
    ycase("yaml_all_problems", "model: 3\ncolour: red\n", r"(?s)missing field 'method'.*missing field 'contact'.*unknown fields")
    ycase("yaml_python_tag", "model: !!python/object/apply:os.system ['touch /tmp/pwned']\n", r"not accepted YAML")
    ycase("yaml_name_slugified", ok + "name: ../../Evil Name\n", r"entry name 'evil-name'", rc=0)
    ycase("yaml_name_empty_slug", ok + "name: '!!!'\n", r"needs letters or digits")
    ycase("yaml_name_windows_device", ok + "name: Con\n", r"entry name 'con': con is a device name on Windows")

    def vcase(name, build, expected):
        folder = copy_of(valid, base / name)
        build(folder / "mini_0.mp4")
        cases.append(Case(name, folder, expected, 2))

    vcase("video_2048_square", lambda p: encode(p, 8, 2048, 2048), r"mini_0.mp4: width 2048 px, expected")
    vcase("video_short_side", lambda p: encode(p, 4, 1920, 1280), r"shorter side may be at most 1088")
    vcase("video_too_many_frames", lambda p: encode(p, 2100, 64, 48), r"2100 frames, expected")
    vcase("video_low_fps", lambda p: encode(p, 8, 64, 48, fps=2), r"2 fps, expected")
    vcase("video_not_mp4", lambda p: p.write_bytes(b"not a video at all"), r"not an MP4 video")
    vcase("video_empty", lambda p: p.write_bytes(b""), r"not an MP4 video")
    vcase("video_truncated", lambda p: p.write_bytes(p.read_bytes()[:200]), r"not decodable")
    vcase("video_decodes_too_large", lambda p: encode(p, 180, 1920, 1088),
          r"180 frames of 1920x1088 decode to 1076 MiB, more than 1024 \(--max-decoded-mb\)")
    vcase("video_garbage_after_ftyp", lambda p: p.write_bytes(p.read_bytes()[:32] + os.urandom(3000)), r"not decodable")
    return cases


def nested_folders(folder: Path, depth: int) -> Path:
    """`folder`/d/d/.../d, `depth` levels, made without recursion (os.makedirs recurses once per level)."""
    descriptor = os.open(folder, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=descriptor)
        descriptor, parent = os.open("d", os.O_RDONLY, dir_fd=descriptor), descriptor
        os.close(parent)
    os.close(descriptor)
    return folder


def remove_nested_folders(folder: Path, depth: int) -> None:
    """Undo `nested_folders` from the deepest level up (shutil.rmtree and pathlib's rglob recurse)."""
    descriptors = [os.open(folder, os.O_RDONLY)]
    for _ in range(depth - 1):
        descriptors.append(os.open("d", os.O_RDONLY, dir_fd=descriptors[-1]))
    while descriptors:
        descriptor = descriptors.pop()
        os.rmdir("d", dir_fd=descriptor)
        os.close(descriptor)


# --- leaderboard entries ----------------------------------------------------------------------------------------

def entry(name: str, model: str = "m", overall: float = 50.0) -> dict:
    sha = "sha256:" + "0" * 64
    cell = {"value": overall, "n": 12, "ci95": [overall - 5, overall + 5]}
    return {
        "schema_version": "1.0", "name": name, "created": "2026-01-01T00:00:00+00:00",
        "submission": {"model": model, "method": "baseline", "parameters": {}, "contact": "x@y.z"},
        "data": {"name": "mini", "source": "mini", "hash": sha, "n_samples": 12},
        "hashes": {"videos": sha, "metadata": sha, "summary": sha},
        "evaluation": {"judge": "tiny", "scorer": "tiny", "judge_model": "tiny", "judge_mode": "parity", "config_hash": sha},
        "smoke": True, "comparable": False, "metrics": {"overall": cell},
        "versions": {"omiti2v": "0"}, "run_dir": f"runs/{name}",
    }


def entry_cases(entries: Path, outside: Path) -> list[Case]:
    """Entry files for `omiti2v leaderboard` (exit 0; each bad one skipped with a warning naming it)."""
    entries.mkdir(parents=True)
    good = {"good_formula": entry("good-formula", model="=HYPERLINK(\"http://x\")"), "good_at": entry("good-at", model="@SUM(A1)")}
    for name, e in good.items():
        (entries / f"{name}.json").write_text(json.dumps(e))
    text = json.dumps(entry("x"))
    bad = {
        "deep": "[" * 100_000 + "]" * 100_000,
        "nan": text.replace('"value": 50.0', '"value": NaN'),
        "infinity": text.replace('"value": 50.0', '"value": Infinity'),
        "lo_above_hi": json.dumps({**entry("x"), "metrics": {"overall": {"value": 50.0, "n": 12, "ci95": [60.0, 40.0]}}}),
        "n_huge": json.dumps({**entry("x"), "metrics": {"overall": {"value": 50.0, "n": 2 ** 62, "ci95": None}}}),
        "bidi_model": json.dumps(entry("x", model="evil\u202e")),
        "zero_width_model": json.dumps(entry("x", model="a\u200bb")),
        "nul_model": json.dumps(entry("x", model="a\u0000b")),
        "duplicate_key": text.replace('{"schema_version": "1.0"', '{"schema_version": "1.0", "schema_version": "1.0"'),
        "huge_int": text.replace('"n": 12', '"n": ' + "9" * 5001),
        "not_json": "{oops",
        "empty": "",
        "out_of_range": json.dumps(entry("x", overall=120.0)),
        "too_large": json.dumps({**entry("x"), "versions": {"omiti2v": "x" * (2 << 20)}}),
        "not_utf8": b"\xff\xfe",
        "ci_1e308": json.dumps({**entry("x"), "metrics": {"overall": {"value": 50.0, "n": 12, "ci95": [-1e308, 1e308]}}}),
        "uppercase_name": json.dumps({**entry("x"), "name": "Upper", "run_dir": "runs/Upper"}),
    }
    cases = []
    for name, data in bad.items():
        path = entries / f"{name}.json"
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        cases.append(Case(name, path, rf"skipping leaderboard entry {path}", 0))
    (entries / "symlink_out.json").symlink_to(outside.parent / "secret.json")
    (entries / "folder.json").mkdir()
    cases += [Case(n, entries / f"{n}.json", rf"skipping leaderboard entry {entries / n}.json", 0)
              for n in ("symlink_out", "folder")]
    return cases
