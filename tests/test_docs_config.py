"""docs/training.md's config reference stays complete: the section count and every key.

The key list is read from the config classes (``Config.model_fields`` and each section's fields),
so a key added to the code without a row in the table fails here, naming it.
"""

from __future__ import annotations

import re

from tests.conftest import REPO

TRAINING = REPO / "docs" / "training.md"
NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
]


def config_keys() -> dict[str, list[str]]:
    from cryptocast.config.schema import Config

    return {s: list(f.annotation.model_fields) for s, f in Config.model_fields.items()}


def documented_keys(text: str) -> set[str]:
    """Dotted keys of the key table: a row's first cell names ``section.key`` and then bare
    ``key``s of the same section (``| `train.lr` / `schedule` |``); a ``section.*`` row lists
    its keys in the meaning cell."""
    keys: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([^`]+)`", cells[0])
        if not names or "." not in names[0]:
            continue
        section = names[0].split(".", 1)[0]
        if names[0].endswith(".*"):
            keys |= {f"{section}.{k}" for k in re.findall(r"`(\w+)`", cells[-1])}
            continue
        keys |= {n if "." in n else f"{section}.{n}" for n in names}
    return keys


def test_the_section_count_and_list_match_the_config():
    sections = list(config_keys())
    text = TRAINING.read_text()
    said = re.search(r"One YAML file, (\w+) sections", text)
    assert said, "docs/training.md no longer says how many sections the config has"
    assert said.group(1) == NUMBERS[len(sections)], (said.group(1), sections)
    listed = re.search(r"One YAML file, \w+ sections \(([^)]*)\)", text.replace("\n", " "))
    assert listed and re.findall(r"`(\w+)`", listed.group(1)) == sections


def test_every_config_key_has_a_row_in_the_training_doc():
    documented = documented_keys(TRAINING.read_text())
    missing = [f"{s}.{k}" for s, keys in config_keys().items() for k in keys]
    missing = [k for k in missing if k not in documented]
    assert not missing, f"docs/training.md's key table lacks {missing}"


def test_model_name_lists_every_registered_model():
    from cryptocast.models.registry import model_names

    row = next(r for r in TRAINING.read_text().splitlines() if r.startswith("| `model.name`"))
    missing = [n for n in model_names() if f"`{n}`" not in row]
    assert not missing, f"the model.name row lacks {missing}"
