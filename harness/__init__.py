"""What the tests and the benches both use: a throwaway PostgreSQL server, a fake clock, Chromium's flags.

tests/ wraps these in its fixtures; bench/ uses them as they are. Nothing here imports pytest or tests/ (a bench
run needs neither: tests/test_import_graph.py checks it).
"""
