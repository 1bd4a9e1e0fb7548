"""Embedded Qdrant: Qdrant's REST API on 127.0.0.1, served from a local directory by Qdrant Edge.

One server process owns the data; every Dagster step, Spark worker, curl or qdrant-client talks to it
over loopback like to any Qdrant. This package's top level imports only the standard library.
"""

from dagster_qdrant.embedded.control import ServerStatus, embedded_status, stop_embedded_qdrant
from dagster_qdrant.embedded.launcher import EmbeddedServer, ensure_embedded_qdrant, start_embedded_qdrant

__all__ = [
    "EmbeddedServer",
    "ServerStatus",
    "embedded_status",
    "ensure_embedded_qdrant",
    "start_embedded_qdrant",
    "stop_embedded_qdrant",
]
