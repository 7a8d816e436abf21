"""Data layer: exchange client (ccxt), incremental fetch, importers, Parquet store, integrity checks.

exchange.py -> fetch.py -> store.py <- importers.py; integrity.py summarises any stored series.
"""
