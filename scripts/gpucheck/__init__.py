"""The sections of ``scripts/gpu_check.py`` (``make gpu-check``): ``sizes`` (the slot, the sizes and
the tolerances), ``training`` (precision policy, CPU-vs-accelerator agreement), ``attention``
(FAVOR+ vs SDPA), ``timing`` (throughput, ``make compare``) and ``results`` (the bench document).

Nothing here imports torch at import time: ``gpu_check.py`` applies the thread plan first."""
