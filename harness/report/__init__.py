"""The decision report (`harness report`) and the export of the recorded calls (`harness export
outcomes`): what a person reads before promoting, and what a notebook reads.

One module per job: `content` (what a report holds, read from the store), `tables` (its
tables as text), `charts` (its pictures, matplotlib), `as_html` and `as_markdown` (the two
forms), `export` (outcomes as Parquet or CSV, streamed), `files` (atomic writes), `cli` (the
commands). Nothing here is imported by `harness --help` or `status`.
"""
