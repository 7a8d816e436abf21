"""The one typed config every stage reads, and the vocabulary it is validated against.

schema.py (the root, hashes, loading) <- sections.py (one model per section) <- fields.py (the
shared base and bounded value types), text.py (YAML, ``--set`` parsing, error wording), dates.py (the
ISO date parser), names.py (names that become paths), timeframes.py (timeframe strings), space.py
(the grammar of ``tune.space``). Lowest stage: it imports nothing of cryptocast but ``errors``.
"""

from cryptocast.config.schema import Config, config_from_dict, load_config

__all__ = ["Config", "config_from_dict", "load_config"]
