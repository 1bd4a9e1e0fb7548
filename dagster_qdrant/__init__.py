"""dagster_qdrant: PySpark DataFrames of embeddings into Qdrant and back."""
