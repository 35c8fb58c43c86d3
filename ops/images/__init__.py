"""Build contexts of the images the harness builds itself (see ops/image.py)."""
