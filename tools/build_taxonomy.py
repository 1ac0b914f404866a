"""Build curation/data/taxonomy.json from public class lists (class names are facts).

Sources, read from the wheels that ship them (`pip download --no-deps ultralytics`):
COCO (80), Objects365 (365) and ImageNet-1k (1000) names from ultralytics' dataset
configs, ADE20K (150) for background "stuff". ImageNet classes 0-397 are animals.
Usage: python tools/build_taxonomy.py <ultralytics/cfg/datasets dir> <out.json>
"""

import json
import re
import sys
from pathlib import Path

import yaml

HUMAN = ["person", "man", "woman", "boy", "girl", "child", "kid", "baby", "toddler", "teenager", "adult",
         "lady", "gentleman", "player", "rider", "cyclist", "skier", "surfer", "dancer", "singer", "worker",
         "chef", "doctor", "nurse", "student", "teacher", "soldier", "police officer", "athlete", "astronaut",
         "pedestrian", "driver", "musician", "actor", "actress", "bride", "groom", "old man", "old woman",
         "young man", "young woman", "grandmother", "grandfather", "mother", "father", "officer"]
ANIMALS = ["dog", "cat", "horse", "cow", "sheep", "bird", "duck", "goose", "chicken", "elephant", "giraffe",
           "zebra", "bear", "pig", "deer", "monkey", "rabbit", "penguin", "fish", "lion", "tiger", "camel",
           "donkey", "mule", "goat", "parrot", "seal", "dolphin", "crab", "shrimp", "lobster", "butterfly",
           "squirrel", "fox", "wolf", "owl", "eagle", "swan", "pigeon", "puppy", "kitten", "bunny", "pony",
           "antelope", "yak", "mouse", "frog", "turtle", "snake", "lizard", "spider", "bee", "ant", "jellyfish",
           "whale", "shark", "kangaroo", "koala", "panda", "hippo", "rhino", "ostrich", "flamingo", "crocodile"]
OBJECTS = ["phone", "mobile phone", "smartphone", "shirt", "t-shirt", "jacket", "coat", "dress", "suit", "uniform",
           "spacesuit", "sweater", "hoodie", "scarf", "skirt", "trousers", "jeans", "bag", "mug", "cup", "sofa",
           "ball", "book", "laptop", "camera", "guitar", "umbrella", "kite", "skateboard", "bicycle", "bike",
           "scooter", "car", "bus", "boat", "toy", "box", "stick", "frisbee", "helmet", "glasses", "watch"]
# ADE20K "stuff" and scene parts: places and surfaces, never a subject.
STUFF_HINTS = {"wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth",
               "mountain", "plant", "water", "house", "sea", "field", "sand", "skyscraper", "path", "stairs",
               "runway", "river", "bridge", "hill", "land", "dirt track", "waterfall", "lake", "stage", "grandstand",
               "fence", "rock", "hovel", "tower", "column", "step", "escalator", "ground", "window", "windowpane",
               "door", "railing", "palm", "flower", "bush", "snow", "cloud", "forest", "street", "beach",
               "park", "city", "kitchen", "office", "garden", "meadow", "burrow", "pavement", "backdrop", "flag"}


def _clean(name: str) -> list[str]:
    name = re.sub(r"\(.*?\)", "", name).strip().lower().replace("_", " ")
    parts = [p.strip() for p in re.split(r"/|,", name) if p.strip()]
    return [re.sub(r"\s+", " ", p) for p in parts]


def _singular(term: str, lookup: dict[str, str]) -> str:
    words = term.split(" ")
    words[-1] = lookup.get(words[-1], words[-1])
    return " ".join(words)


def main(datasets: Path, out: Path) -> None:
    from spacy.lookups import load_lookups

    lemma = load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
    lookup = {k: lemma[k] for k in lemma}

    def names(file: str) -> list[str]:
        raw = yaml.safe_load((datasets / file).read_text())["names"]
        return list(raw.values()) if isinstance(raw, dict) else list(raw)

    living, non_living, background = set(HUMAN) | set(ANIMALS), set(OBJECTS), set(STUFF_HINTS)
    imagenet = names("ImageNet.yaml")
    for i, n in enumerate(imagenet):
        for term in _clean(n):
            (living if i < 398 else non_living).add(_singular(term, lookup))
    for n in names("coco.yaml"):
        for term in _clean(n):
            (living if term in living or term in ANIMALS or term == "person" else non_living).add(term)
    for n in names("Objects365.yaml"):
        for term in _clean(n):
            term = _singular(term, lookup)
            head = term.split(" ")[-1]
            (living if head in living else non_living).add(term)
    for n in names("ade20k.yaml"):
        for term in _clean(n):
            term = _singular(term, lookup)
            if term not in living and term not in non_living:
                background.add(term)
    non_living -= living | background
    living -= background
    taxonomy = {
        "sources": "COCO, Objects365, ImageNet-1k (classes 0-397 living) and ADE20K class names; human and "
                   "common animal nouns added by hand",
        "living": sorted(living),
        "non_living": sorted(non_living),
        "background": sorted(background),
        "human": sorted(HUMAN),
    }
    out.write_text(json.dumps(taxonomy, indent=1) + "\n")
    print(f"living {len(living)}, non_living {len(non_living)}, background {len(background)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
