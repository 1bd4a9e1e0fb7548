"""`dagster-qdrant [serve|status|stop] [--path DIR] ...` and `python -m dagster_qdrant.embedded`.

`serve` (also the default) runs a server in the foreground; `status` says whether one serves a data
directory (exit code 0 when it runs, 3 when not, as init scripts do) and `stop` stops it, such as the
detached server a Dagster run leaves behind.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dagster_qdrant.embedded.launcher import API_KEY_ENVIRONMENT_VARIABLE, default_path
from dagster_qdrant.embedded.ports import PREFERRED_PORT, any_free_port, is_free, port_candidates, remember_port

DEFAULT_PORT = PREFERRED_PORT
NOT_RUNNING_EXIT_CODE = 3
PATH_HELP = "data directory (default: $DAGSTER_QDRANT_PATH, else .qdrant/ under the current directory)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagster-qdrant",
        description="Serve Qdrant's REST API on 127.0.0.1 from a local directory (Qdrant Edge; no Docker needed).",
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the embedded Qdrant server in the foreground")
    _add_serve_arguments(serve)
    _add_serve_arguments(parser)
    status = commands.add_parser("status", help="say whether an embedded Qdrant serves the data directory")
    status.add_argument("--path", default=None, help=PATH_HELP)
    stop = commands.add_parser("stop", help="stop the embedded Qdrant serving the data directory")
    stop.add_argument("--path", default=None, help=PATH_HELP)
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", default=None, help=PATH_HELP)
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port on 127.0.0.1 (default: the port this data directory last used when free, else "
        f"{DEFAULT_PORT} when free, else any free port; 0 = any free port)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require this key in the `api-key` header or as a bearer token (default: ${API_KEY_ENVIRONMENT_VARIABLE})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    path = Path(arguments.path).resolve() if arguments.path else default_path()
    if arguments.command == "status":
        return _status(path)
    if arguments.command == "stop":
        return _stop(path)
    from dagster_qdrant.embedded.server import serve  # imports the engine; keep `--help` instant

    port = arguments.port if arguments.port is not None else _free_candidate(path)
    api_key = arguments.api_key or os.environ.get(API_KEY_ENVIRONMENT_VARIABLE) or None
    serve(path, port=port, api_key=api_key)
    return 0


def _free_candidate(path: Path) -> int:
    """The port a server started by `ensure_embedded_qdrant` would take, remembered for the next start."""
    path.mkdir(parents=True, exist_ok=True)
    port = next(port for port in port_candidates(path) if is_free(port)) or any_free_port()
    remember_port(path, port)
    return port


def _status(path: Path) -> int:
    from dagster_qdrant.embedded.control import embedded_status

    status = embedded_status(path)
    print(status.describe())
    return 0 if status.running else NOT_RUNNING_EXIT_CODE


def _stop(path: Path) -> int:
    from dagster_qdrant.embedded.control import stop_embedded_qdrant

    status = stop_embedded_qdrant(path)
    if status.running:
        print(f"stopped the embedded Qdrant at {status.url} (pid {status.pid}, data in {status.path})")
    else:
        print(status.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
