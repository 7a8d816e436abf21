"""The daily forecast job (job.py): refresh candles, check freshness and model age, predict with
a trained run, append to the forecast logs (log.py for prices, volatility.py for realized vol;
kinds.py picks one by the run's target kind).
"""
