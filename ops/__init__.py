"""The harness: bring the declared stack up, check it, diagnose it and tear it down.

Nothing in this package knows about Invoke; `tasks.py` is the only entry point that does.
"""
