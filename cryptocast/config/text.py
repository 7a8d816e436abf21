"""Reading config text: YAML without date coercion, ``--set section.key=value`` overrides, and
the one-line wording of a validation error (which key, and who set it: the file or an option).

Kept apart from :mod:`cryptocast.config.schema` (the typed sections) so that module stays the schema.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cryptocast.errors import ConfigError


def _join(where: str, what: str) -> str:
    """``--since '2023-13-01' is not ...`` when the phrase starts with the value, else ``a: b``."""
    return f"{where} {what}" if what.startswith("'") else f"{where}: {what}"


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model found at ``loc`` below ``root`` (list indices skipped), or None."""
    node: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = node.model_fields.get(str(part)) if node is not None else None
        node = _inner_model(field.annotation) if field is not None else None
        if node is None:
            return None
    return node


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``annotation`` (``list[IndicatorSpec] | None`` -> IndicatorSpec)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in typing.get_args(annotation) if (m := _inner_model(a))), None)


def did_you_mean(loc: tuple, root: type[BaseModel] | None) -> str:
    """``; did you mean train.epochs?`` for an unknown key at ``loc`` (difflib against the keys
    its parent allows); a top-level miss without a close match lists the sections."""
    parent = _model_at(root, loc[:-1]) if root is not None else None
    if parent is None or not loc:
        return ""
    keys = list(parent.model_fields)
    match = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {'.'.join(str(p) for p in (*loc[:-1], match[0]))}?"
    return f" (sections: {', '.join(keys)})" if len(loc) == 1 else ""


def _mentions(text: str, key: str) -> bool:
    """Whether ``text`` names the dotted ``key`` (not merely a longer key that starts with it)."""
    return re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", text) is not None


def format_validation_error(
    err: ValidationError,
    source: str,
    blame: dict[str, str] | None = None,
    root: type[BaseModel] | None = None,
) -> str:
    """One sentence for the first problem, naming where it came from.

    Args:
        err: pydantic's error.
        source: where the values came from (a config file path, or ``defaults``).
        blame: dotted key -> what set it on the command line (``--set train.epochs=abc``,
            ``--test-start``); a problem at or under such a key, or a cross-field check naming
            such a key, names that instead of ``source``.
        root: the model validated; an unknown key then gets a "did you mean" from its keys.
    """
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        set_here = any(k == loc or k.startswith(loc + ".") for k in blame or {})
        msg = f"unknown key {loc}" if set_here else "unknown key"
        msg += did_you_mean(tuple(first["loc"]), root)
    elif kind == "value_error" and "ctx" in first:
        msg = str(first["ctx"]["error"])  # our own sentence, without pydantic's "Value error, "
    else:
        msg = first["msg"][:1].lower() + first["msg"][1:]
    if kind == "list_type":  # show the form: a comma string is split, anything else is not
        msg += ": write it as [a, b] (or a, b)"
    extra = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    blame = blame or {}
    culprits = [by for key, by in blame.items() if key == loc or key.startswith(loc + ".")]
    if kind == "value_error" and "." not in loc:  # a cross-field check names its keys itself
        culprits = [by for key, by in blame.items() if _mentions(msg, key)] or culprits
    if culprits:  # the command line set it: blame the option, not the file
        by, value = culprits[-1], first.get("input")
        if by.startswith("--set ") or msg.startswith("'"):  # the value is already in the text
            return (f"{by}: {msg}" if by.startswith("--set ") else f"{by} {msg}") + extra
        shown = f" {value!r}" if isinstance(value, str | int | float) else ""
        return f"{by}{shown}: {msg}{extra}"
    if kind == "value_error" and "." not in loc:
        return f"{source}: {msg}{extra}"
    return f"{source}: {_join(loc, msg)}{extra}"


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that keeps unquoted dates as strings: config dates are ISO strings, and
    ``--set data.start=2020-01-01`` must not turn into a ``datetime.date`` that fails validation."""


YamlLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_problem(err: yaml.YAMLError) -> str:
    """``line 3: mapping values are not allowed here``: where and why YAML gave up, one line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    if problem is None:  # a ReaderError (a control character) has no problem/context fields
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
    why = f"{problem} ({context})" if context else problem
    return f"line {mark.line + 1}: {why}" if mark is not None else why


MAX_NESTING = 100  # no config nests past ~5; PyYAML spends seconds on 1,000, then recurses out


def too_deep(text: str) -> bool:
    """Whether ``text`` nests flow brackets (``[`` ``{``) deeper than ``MAX_NESTING``: checked
    before YAML parses it, so a hostile JSON/YAML is refused at once, not by a RecursionError."""
    depth = 0
    for m in re.finditer(r"[\[\]{}]", text):
        depth += 1 if m[0] in "[{" else -1
        if depth > MAX_NESTING:
            return True
    return False


def _parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value with YAML rules (numbers, booleans, lists, null)."""
    if too_deep(text):  # kept as text: the key's own check names it
        return text
    try:
        return yaml.load(text, Loader=YamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, RecursionError):
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
