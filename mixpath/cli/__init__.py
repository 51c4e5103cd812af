"""The ``mixpath`` command: a thin layer over the Python API, one module per group of commands.

Errors a user can cause (MixPathError) print as one line and exit with status 2, never a traceback.

Start-up stays light: ``mixpath --help``, ``mixpath --version`` and ``mixpath COMMAND --help`` import
neither torch nor pymoo nor matplotlib, which are slow to import. The command modules
import them inside the command functions, and what only a running command needs (the faster runtime of
``mixpath.allocator``) happens in ``Command.invoke``, which click reaches only
once the arguments have parsed.
"""

from __future__ import annotations

import importlib
import logging
import sys
from importlib import metadata
from typing import Any

import typer
from typer.core import TyperCommand

from mixpath.errors import MixPathError

FAST_RUNTIME = "fast_runtime"
"""Key that ``main`` sets in the root context's ``obj``: only the ``mixpath`` process itself re-executes
with the faster runtime, never a program (a test) that invokes ``app`` in-process."""

app = typer.Typer(
    help="One-shot neural architecture search: MixPath multi-path supernets with Shadow BN, SPOS and FairNAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: "[default: ...]" in a help text stays text, and rich is not imported
)


class Command(TyperCommand):
    """A mixpath command: prepares the process only when the command is about to run."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer passes its own Context
        if isinstance(ctx.obj, dict) and ctx.obj.get(FAST_RUNTIME):
            from mixpath.kernels.runtime import reexec_with_fast_runtime

            reexec_with_fast_runtime()  # tcmalloc/jemalloc and OpenMP waiting fit to the load; see mixpath.allocator
        return super().invoke(ctx)


def _print_version(wanted: bool) -> None:
    if not wanted:
        return
    try:
        version = metadata.version("mixpath")
    except metadata.PackageNotFoundError:
        version = "(not installed: pip install -e . in the repository)"
    typer.echo(f"mixpath {version}")
    raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
    ),
) -> None:
    """Options of ``mixpath`` itself; the commands come from ``COMMAND_MODULES``."""


COMMAND_MODULES = ("train_commands", "search_commands", "ranking_commands")
"""The modules that register commands on ``app``, in the order ``mixpath --help`` lists their commands (the
order data flows through them)."""


def register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"mixpath.cli.{name}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    register_commands()
    try:
        app(obj={FAST_RUNTIME: True})
    except MixPathError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
