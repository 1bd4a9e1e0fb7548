"""The Dagster integration: the resource (where Qdrant is) and the IO manager (assets into collections
and back). Named so that it never shadows the ``dagster`` package for readers of an import line."""
