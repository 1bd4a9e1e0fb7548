"""The ``qdrant`` PySpark data source: read planning, pushdown, schema, points -> Arrow, the driver's
commit of a write, and the streaming sink. Built on the Spark-free core; never imports Dagster."""
