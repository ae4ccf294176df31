"""Python tests for training/ (run from the repo root: ``npm run test:py``, i.e.
``/usr/bin/python3 -m unittest discover -s training/tests -t training``).

This file makes the folder importable, which ``discover -t training`` requires.
"""
