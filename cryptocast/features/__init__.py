"""Features: candles -> a causal feature table with its target, then windows for the models.

indicators.py (``ta`` on a RangeIndex, ta_ports.py for the ones ``ta`` gets wrong) and
volatility.py (realized measures) feed table.py, which adds the target of targets.py; windows.py
splits the table and fits scalers on training rows only.
"""
