"""The store: runs, outcomes, shadow comparisons, the live rollout state and its events, in SQL.

SQLite (a file, WAL mode) by default, PostgreSQL by URL; the same code and tests on both. The
schema exists only through the Alembic migrations (`harness db upgrade`).
"""
