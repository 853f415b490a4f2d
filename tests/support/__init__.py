"""Shared test helpers. Test modules import from here (and use conftest.py's fixtures), never
from another test module: tests/test_suite_shape.py checks it."""
