"""``cryptocast tune``: an Optuna study (study.py) whose trials (trial.py) are walk-forward runs
over a tuning period that ends before the test period; space.py turns ``tune.space`` into Optuna
suggestions.
"""
