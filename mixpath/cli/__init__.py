"""The ``mixpath`` command: a thin layer over the Python API, one module per group of commands.

Errors a user can cause (MixPathError) print as one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from mixpath.allocator import reexec_with_fast_runtime
from mixpath.errors import MixPathError

app = typer.Typer(
    help="One-shot neural architecture search: MixPath multi-path supernets with Shadow BN, SPOS and FairNAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import mixpath.benchmarks_nas  # noqa: F401  (registers the nb201 and nb101 spaces)
    from mixpath.cli import (  # noqa: F401  (they register commands on ``app``)
        ranking_commands,
        search_commands,
        train_commands,
    )


def main() -> None:
    reexec_with_fast_runtime()  # tcmalloc/jemalloc and OpenMP waiting fit to the load; see mixpath.allocator
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _register_commands()
    try:
        app()
    except MixPathError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
