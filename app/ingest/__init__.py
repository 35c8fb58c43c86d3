"""Load Homer's Perseus TEI editions into text_segment and token, idempotently, in one transaction.

- `tei`: `parse_work(path)` is pure (no database): it returns the verses of a file as the
  edition numbers them;
- `writer`: `ingest(url_or_engine, work, books)` parses first, then writes everything in one
  transaction: COPY into temporary staging tables, then INSERT ... SELECT ... ON CONFLICT DO
  NOTHING, so a second run inserts nothing and a failure leaves the database as it was;
- `cli`: run it as ``python -m app.ingest --work iliad --books 1-3``.
"""

from app.ingest.tei import DATA_DIR, IngestError, ParsedWork, Verse, parse_work
from app.ingest.writer import IngestReport, ingest, search_indexes_paused, vacuum_after_load

__all__ = [
    "DATA_DIR",
    "IngestError",
    "IngestReport",
    "ParsedWork",
    "Verse",
    "ingest",
    "parse_work",
    "search_indexes_paused",
    "vacuum_after_load",
]
