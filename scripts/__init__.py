"""Maintenance commands (run as ``python scripts/<name>.py``); a package so their helper packages
(``scripts.comparison``, ``scripts.gpucheck``) import by one unambiguous name."""
