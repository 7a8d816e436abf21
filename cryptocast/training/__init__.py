"""Training: one loop for every model (loop.py), checkpoints, the prediction path shared by
backtest and forecast (inference.py), precision and thread policies, and run folders (runs.py).
"""
