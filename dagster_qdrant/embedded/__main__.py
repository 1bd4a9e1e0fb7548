"""`python -m dagster_qdrant.embedded [serve] [--path DIR] [--port N] [--api-key KEY]`."""

import sys

from dagster_qdrant.embedded.cli import main

sys.exit(main())
