"""Fault drills (issue 16): real processes under faults, load and bad input; `benches/drills.py`
runs them and writes `benches/reports/drills.md`."""
