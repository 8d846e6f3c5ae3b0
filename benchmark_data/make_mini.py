"""Draw the bundled mini benchmark (benchmark_data/mini) in the official OmitI2V layout.

Deterministic: the same script always writes the same PNG bytes and meta.json. Each scene is a simple
drawing with recognisable objects and colours, so that generation, judging and scoring have something
meaningful to look at. Run `python benchmark_data/make_mini.py [OUT_DIR]` to regenerate (default: benchmark_data/mini).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

W, H = 320, 192
OUT = Path(__file__).resolve().parent / "mini"


def sky_and_ground(d: ImageDraw.ImageDraw, sky="#8ecae6", ground="#6a994e", horizon=128) -> None:
    d.rectangle([0, 0, W, horizon], fill=sky)
    d.rectangle([0, horizon, W, H], fill=ground)


def sun(d, x=270, y=35, r=18, color="#ffb703"):
    d.ellipse([x - r, y - r, x + r, y + r], fill=color)


def tree(d, x, base=140, color="#2d6a4f"):
    d.rectangle([x - 5, base - 30, x + 5, base], fill="#7f5539")
    d.ellipse([x - 25, base - 75, x + 25, base - 25], fill=color)


def house(d, x=60, base=150, wall="#e63946", roof="#6d597a"):
    d.rectangle([x, base - 60, x + 80, base], fill=wall)
    d.polygon([(x - 10, base - 60), (x + 40, base - 100), (x + 90, base - 60)], fill=roof)
    d.rectangle([x + 32, base - 30, x + 48, base], fill="#3d2b1f")


def car(d, x=110, base=165, body="#1d4ed8"):
    d.rectangle([x, base - 25, x + 90, base - 5], fill=body)
    d.polygon([(x + 20, base - 25), (x + 32, base - 42), (x + 62, base - 42), (x + 75, base - 25)], fill=body)
    for cx in (x + 20, x + 70):
        d.ellipse([cx - 10, base - 15, cx + 10, base + 5], fill="#111111")


def road(d):
    d.rectangle([0, 150, W, 185], fill="#4a4e69")
    for x in range(0, W, 40):
        d.rectangle([x, 166, x + 20, 169], fill="#f8f9fa")


def sea(d):
    d.rectangle([0, 0, W, 110], fill="#a2d2ff")
    d.rectangle([0, 110, W, H], fill="#0077b6")


def boat(d, x=120, base=125, hull="#9c6644", sail="#ffffff"):
    d.polygon([(x, base - 15), (x + 90, base - 15), (x + 75, base), (x + 15, base)], fill=hull)
    d.rectangle([x + 43, base - 75, x + 47, base - 15], fill="#333333")
    d.polygon([(x + 48, base - 72), (x + 48, base - 20), (x + 85, base - 20)], fill=sail)


def table_scene(d):
    d.rectangle([0, 0, W, 120], fill="#fefae0")
    d.rectangle([0, 120, W, H], fill="#bc6c25")


def cup(d, x=140, base=125, color="#e76f51"):
    d.rectangle([x, base - 40, x + 36, base], fill=color)
    d.arc([x + 28, base - 32, x + 50, base - 10], 270, 90, fill=color, width=5)


def apple(d, x=220, base=125, color="#d62828"):
    d.ellipse([x - 16, base - 32, x + 16, base], fill=color)
    d.rectangle([x - 1, base - 40, x + 2, base - 30], fill="#5a3e1b")


def snowman(d, x=160, base=170):
    for r, y in ((30, base - 30), (22, base - 80), (15, base - 115)):
        d.ellipse([x - r, y - r, x + r, y + r], fill="#ffffff", outline="#adb5bd")
    d.polygon([(x, base - 117), (x + 18, base - 114), (x, base - 111)], fill="#f77f00")


def balloon(d, x=200, y=60, color="#e5383b"):
    d.ellipse([x - 18, y - 24, x + 18, y + 24], fill=color)
    d.line([(x, y + 24), (x - 6, y + 80)], fill="#333333", width=2)


def flower(d, x=160, base=150, petals="#ff006e"):
    d.rectangle([x - 2, base - 50, x + 2, base], fill="#2d6a4f")
    for dx, dy in ((-10, 0), (10, 0), (0, -10), (0, 10)):
        d.ellipse([x + dx - 8, base - 60 + dy - 8, x + dx + 8, base - 60 + dy + 8], fill=petals)
    d.ellipse([x - 6, base - 66, x + 6, base - 54], fill="#ffbe0b")


def traffic_light(d, x=150, base=180, lit="red"):
    d.rectangle([x + 8, base - 60, x + 14, base], fill="#333333")
    d.rectangle([x, base - 140, x + 22, base - 60], fill="#222222")
    colors = {"red": "#ff0000", "yellow": "#ffd60a", "green": "#38b000"}
    for i, name in enumerate(("red", "yellow", "green")):
        fill = colors[name] if name == lit else "#555555"
        d.ellipse([x + 3, base - 135 + i * 26, x + 19, base - 119 + i * 26], fill=fill)


def fish(d, x=160, y=100, color="#ff9f1c"):
    d.ellipse([x - 25, y - 12, x + 15, y + 12], fill=color)
    d.polygon([(x + 12, y), (x + 30, y - 14), (x + 30, y + 14)], fill=color)


def q(qid, text, answer, category):
    return {"id": qid, "question": text, "expected_answer": answer, "category": category}


def scenes():
    """(id, draw function, record fields) for every mini sample."""

    def s_house(d):
        sky_and_ground(d), sun(d), house(d), tree(d, 230)

    def s_car(d):
        sky_and_ground(d), road(d), car(d), tree(d, 40)

    def s_boat(d):
        sea(d), boat(d), sun(d, 50, 30)

    def s_table(d):
        table_scene(d), cup(d), apple(d)

    def s_snow(d):
        sky_and_ground(d, sky="#caf0f8", ground="#f1faee", horizon=120), snowman(d)

    def s_park(d):
        sky_and_ground(d), tree(d, 80), tree(d, 250, color="#40916c")

    def s_flower(d):
        sky_and_ground(d, sky="#ffe5ec"), flower(d)

    def s_light(d):
        sky_and_ground(d, sky="#adb5bd", ground="#6c757d", horizon=150), traffic_light(d)

    def s_tank(d):
        d.rectangle([0, 0, W, H], fill="#48cae4"), fish(d), fish(d, 90, 60, "#ffd166")
        d.rectangle([0, 170, W, H], fill="#e9c46a")

    def s_balloon(d):
        sky_and_ground(d), balloon(d), house(d, x=40)

    def s_road(d):
        sky_and_ground(d), road(d), car(d, x=40, body="#e63946"), car(d, x=190, body="#ffb703")

    def s_beach(d):
        sea(d), boat(d, x=30, sail="#ffbe0b"), boat(d, x=190, hull="#264653")

    common = {"resolution": [W, H]}
    return [
        ("mini_0", s_house, "modification", "color", "Structures", "real",
         "The red house slowly turns blue while the sun shines.", "The house walls change from red to blue.",
         [q("q1", "Is the house blue at the end of the video?", "yes", "attribute_correctness"),
          q("q2", "Is the house still red at the end of the video?", "no", "attribute_correctness"),
          q("q3", "Is there a house in the video?", "yes", "object_presence")]),
        ("mini_1", s_car, "deletion", "object_removal", "Objects", "real",
         "The blue car drives away to the right and leaves the road empty.", "The car leaves the scene.",
         [q("q1", "Is the blue car visible at the end of the video?", "no", "object_presence"),
          q("q2", "Does the car move to the right?", "yes", "action_correctness")]),
        ("mini_2", s_boat, "addition", "object_addition", "Nature & Environment", "animation",
         "A seagull flies in and lands on the mast of the sailing boat.", "A seagull appears on the mast.",
         [q("q1", "Does a bird appear in the video?", "yes", "object_presence"),
          q("q2", "Does the bird land on the boat's mast?", "yes", "action_correctness"),
          q("q3", "Does the boat sink?", "no", "scene_consistency")]),
        ("mini_3", s_table, "deletion", "object_removal", "Food & Necessities", "real",
         "A hand reaches in and takes the red apple off the table.", "The apple disappears from the table.",
         [q("q1", "Is the apple still on the table at the end?", "no", "object_presence"),
          q("q2", "Does a hand appear in the video?", "yes", "object_presence"),
          q("q3", "Is the cup still on the table?", "yes", "scene_consistency")]),
        ("mini_4", s_snow, "addition", "object_addition", "Living Beings", "animation",
         "A red scarf appears around the snowman's neck as snow starts falling.", "The snowman wears a red scarf.",
         [q("q1", "Does the snowman wear a red scarf at the end?", "yes", "object_presence"),
          q("q2", "Is snow falling?", "yes", "action_correctness")]),
        ("mini_5", s_park, "addition", "object_addition", "Living Beings", "real",
         "A brown dog runs into the park between the two trees.", "A dog appears between the trees.",
         [q("q1", "Does a dog appear in the video?", "yes", "object_presence"),
          q("q2", "Is the dog running?", "yes", "action_correctness"),
          q("q3", "Are the trees removed?", "no", "scene_consistency")]),
        ("mini_6", s_flower, "modification", "state_change", "Nature & Environment", "generated",
         "The pink flower closes its petals and wilts.", "The flower wilts.",
         [q("q1", "Does the flower wilt?", "yes", "action_correctness"),
          q("q2", "Are the petals still open at the end?", "no", "attribute_correctness")]),
        ("mini_7", s_light, "modification", "state_change", "Structures", "real",
         "The traffic light switches from red to green.", "The light turns green.",
         [q("q1", "Is the green light on at the end of the video?", "yes", "attribute_correctness"),
          q("q2", "Is the red light on at the end of the video?", "no", "attribute_correctness")]),
        ("mini_8", s_tank, "deletion", "object_removal", "Living Beings", "animation",
         "The orange fish swims out of view, leaving only the yellow fish.", "The orange fish leaves the tank.",
         [q("q1", "Is the orange fish visible at the end?", "no", "object_presence"),
          q("q2", "Is the yellow fish still visible?", "yes", "object_presence"),
          q("q3", "Does the orange fish swim away?", "yes", "action_correctness")]),
        ("mini_9", s_balloon, "deletion", "object_removal", "Objects", "real",
         "The red balloon pops and vanishes.", "The balloon disappears.",
         [q("q1", "Is the red balloon visible at the end?", "no", "object_presence"),
          q("q2", "Does the balloon pop?", "yes", "action_correctness")]),
        ("mini_10", s_road, "modification", "color", "Tech/Virtual", "generated",
         "The yellow car turns silver as the two cars drive forward.", "The yellow car becomes silver.",
         [q("q1", "Is there a silver car at the end?", "yes", "attribute_correctness"),
          q("q2", "Is the yellow car unchanged at the end?", "no", "attribute_correctness"),
          q("q3", "Do the cars move?", "yes", "action_correctness"),
          q("q4", "Is the red car removed?", "no", "scene_consistency")]),
        ("mini_11", s_beach, "addition", "object_addition", "Arts & Entertainment", "animation",
         "Fireworks burst in the sky above the two boats.", "Fireworks appear in the sky.",
         [q("q1", "Do fireworks appear in the sky?", "yes", "object_presence"),
          q("q2", "Are the boats still on the water?", "yes", "scene_consistency")]),
    ], common


def main(out: Path = OUT) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    table, common = scenes()
    meta = []
    for sid, draw_fn, cat, sub, domain, style, prompt, change, questions in table:
        img = Image.new("RGB", (W, H), "white")
        draw_fn(ImageDraw.Draw(img))
        rel = f"images/{sid}.png"
        img.save(out / rel, optimize=True)
        meta.append({
            "id": sid,
            "image-path": rel,
            "prompt": prompt,
            "resolution": common["resolution"],
            "expected-change": change,
            "main-category": cat,
            "sub-category": sub,
            "domain": domain,
            "style": style,
            "questions": questions,
        })
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(meta)} samples to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
