"""The modes of ``scripts/compare.py``: ``price`` (docs/comparison.md), ``probabilistic``
(docs/probabilistic.md) and ``volatility`` (docs/volatility.md), over the helpers in ``common``."""
