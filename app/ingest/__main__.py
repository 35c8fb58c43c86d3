"""``python -m app.ingest``: see app.ingest.cli."""

import sys

from app.ingest.cli import main

sys.exit(main())
