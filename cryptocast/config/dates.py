"""The one date parser: every date option and config key accepts ISO 8601 dates only.

``01/02/2023`` is 1 February in Europe and 2 January in the US, so it is refused rather than
guessed. Accepted: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM`` (or ``T`` instead of the space), optional
``:SS``, optional ``Z`` or ``±HH:MM`` offset; naive values are UTC. Used by ``fetch --since/--until``,
``backtest --test-start/--test-end``, ``forecast --now`` and the config keys ``data.start``,
``data.end``, ``split.val_start``, ``split.test_start``, ``backtest.test_start``,
``backtest.test_end``, ``tune.start``, ``tune.end`` (validated when the config is loaded, before any data or torch is touched).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from cryptocast.errors import ConfigError

ISO_FORMAT = "YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)"
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?(?:Z|[+-]\d{2}:\d{2})?")


def iso_problem(value: Any) -> str | None:
    """Why ``value`` is not an accepted ISO date (a phrase), or None when it is one."""
    text = value if isinstance(value, str) else None
    if text is None or not _ISO.fullmatch(text.strip()):
        return f"{value!r} is not an ISO date; use {ISO_FORMAT}"
    try:
        datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:  # e.g. month 13, 30 February
        return f"{value!r} is not a valid date ({err}); use {ISO_FORMAT}"
    return None


def parse_iso(value: str, source: str) -> datetime:
    """``value`` as a timezone-aware UTC datetime.

    Args:
        value: the text the user gave.
        source: what to blame in the error: an option (``--since``) or a dotted config key.

    Raises:
        ConfigError: one line naming ``source``, the value and the accepted format.
    """
    problem = iso_problem(value)
    if problem:
        raise ConfigError(f"{source} {problem}")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def to_timestamp(value: str, source: str) -> Any:
    """``value`` as a UTC ``pandas.Timestamp`` (see :func:`parse_iso`)."""
    import pandas as pd

    return pd.Timestamp(parse_iso(value, source))


CLOCK_ENV = "CRYPTOCAST_NOW"


def now_utc(now: Any = None, source: str = CLOCK_ENV) -> Any:
    """The clock every "is it closed yet / how old is it" rule uses: ``now`` (a Timestamp or ISO
    text), else ``$CRYPTOCAST_NOW`` (to replay history), else the wall clock; a UTC Timestamp.
    ``source`` names where a bad value came from in the error."""
    import os

    import pandas as pd

    value = now if now is not None and now != "" else os.environ.get(CLOCK_ENV) or None
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    if isinstance(value, pd.Timestamp):
        return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    return to_timestamp(value, f"the clock ({source})")
