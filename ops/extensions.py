"""The PostgreSQL extensions the app needs (the migrations create them), in a module light
enough for `ops.head_start` to name the initdb template before the heavy imports."""

REQUIRED_EXTENSIONS = ("vector", "pg_trgm")
