"""Spark-free core of both directions: rows -> points (ids, vectors, payload JSON), the upsert writer,
the one scroll loop every reader uses, and writing and reading points without Spark. Nothing here
imports Spark or Dagster."""
