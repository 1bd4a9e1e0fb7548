"""`dagster-qdrant serve [--path DIR] [--port N] [--api-key KEY]` and `python -m dagster_qdrant.embedded`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dagster_qdrant.embedded.launcher import API_KEY_ENVIRONMENT_VARIABLE, default_path

DEFAULT_PORT = 6333


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagster-qdrant",
        description="Serve Qdrant's REST API on 127.0.0.1 from a local directory (Qdrant Edge; no Docker needed).",
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the embedded Qdrant server in the foreground")
    _add_serve_arguments(serve)
    _add_serve_arguments(parser)
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--path",
        default=None,
        help="data directory (default: $DAGSTER_QDRANT_PATH, else .qdrant/ under the current directory)",
    )
    parser.add_argument("--port", type=int, default=None, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require this key in the `api-key` header or as a bearer token (default: ${API_KEY_ENVIRONMENT_VARIABLE})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    from dagster_qdrant.embedded.server import serve  # imports the engine; keep `--help` instant

    path = arguments.path or str(default_path())
    port = DEFAULT_PORT if arguments.port is None else arguments.port
    api_key = arguments.api_key or os.environ.get(API_KEY_ENVIRONMENT_VARIABLE) or None
    serve(path, port=port, api_key=api_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
