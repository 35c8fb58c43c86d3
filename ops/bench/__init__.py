"""`invoke bench`: the stack, search, ingest, scale and memory, measured and reported.

`run.py` orders the sections; each section has its own module; `report.py` writes
`artifacts/bench.json`'s readable side: the summary, docs/benchmarks.md and the plot.
"""
