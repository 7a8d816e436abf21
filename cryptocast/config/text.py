"""Reading config text: YAML without date coercion, ``--set section.key=value`` overrides, and
the one-line wording of a validation error (which key, and who set it: the file or an option).

Kept apart from :mod:`cryptocast.config.schema` (the typed sections) so that module stays the schema.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from cryptocast.errors import ConfigError


def _join(where: str, what: str) -> str:
    """``--since '2023-13-01' is not ...`` when the phrase starts with the value, else ``a: b``."""
    return f"{where} {what}" if what.startswith("'") else f"{where}: {what}"


def format_validation_error(
    err: ValidationError, source: str, blame: dict[str, str] | None = None
) -> str:
    """One sentence for the first problem, naming where it came from.

    Args:
        err: pydantic's error.
        source: where the values came from (a config file path, or ``defaults``).
        blame: dotted key -> what set it on the command line (``--set train.epochs=abc``,
            ``--test-start``); a problem at or under such a key names that instead of ``source``.
    """
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        msg = f"unknown key {loc}" if blame and loc in blame else "unknown key"
    elif kind == "value_error" and "ctx" in first:
        msg = str(first["ctx"]["error"])  # our own sentence, without pydantic's "Value error, "
    else:
        msg = first["msg"][:1].lower() + first["msg"][1:]
    extra = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    culprits = [by for key, by in (blame or {}).items() if key == loc or key.startswith(loc + ".")]
    if culprits:  # the command line set it: blame the option, not the file
        by, value = culprits[-1], first.get("input")
        if by.startswith("--set ") or msg.startswith("'"):  # the value is already in the text
            return (f"{by}: {msg}" if by.startswith("--set ") else f"{by} {msg}") + extra
        shown = f" {value!r}" if isinstance(value, str | int | float) else ""
        return f"{by}{shown}: {msg}{extra}"
    if kind == "value_error" and "." not in loc:  # a cross-field check names its keys itself
        return f"{source}: {msg}{extra}"
    return f"{source}: {_join(loc, msg)}{extra}"


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that keeps unquoted dates as strings: config dates are ISO strings, and
    ``--set data.start=2020-01-01`` must not turn into a ``datetime.date`` that fails validation."""


YamlLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value with YAML rules (numbers, booleans, lists, null)."""
    try:
        return yaml.load(text, Loader=YamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a raw config mapping (in place, returned)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: key must be dotted, like train.epochs=5")
        node = raw
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {p} is not a section")
            node = child
        node[parts[-1]] = _parse_scalar(value)
    return raw


def override_sources(overrides: list[str]) -> dict[str, str]:
    """Dotted key -> ``--set key=value`` for each override (the last one of a key wins)."""
    return {item.split("=", 1)[0].strip(): f"--set {item}" for item in overrides if "=" in item}
