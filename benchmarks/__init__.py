"""Side-by-side throughput and memory benchmarks for dagster_qdrant.

``python -m benchmarks.run`` measures, against one embedded Qdrant and on one generated data set, the Spark data
source (write and read), ``write_qdrant_points``, the official qdrant-client over REST, the ceiling of the HTTP
path (a minimal tight loop) and the engine's in-process ingest; ``python -m benchmarks.scaling`` repeats the Spark
measurements at growing sizes to show that cost grows linearly.
"""
