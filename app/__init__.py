"""A small FastAPI search service over Homer's Greek text. Knows nothing of ops/."""
