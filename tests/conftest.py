"""Shared test setup: makes ``tests/strategies.py`` importable as ``strategies`` under any pytest import mode."""
import os
import sys

_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
