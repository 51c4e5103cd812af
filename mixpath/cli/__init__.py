"""The ``mixpath`` command: a thin layer over the Python API, one module per group of commands.

Errors a user can cause (MixPathError, a malformed command line, a file that cannot be written) print as one
``error:`` line and exit with status 2, never a traceback or a usage box (``run``).

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
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import typer
from typer.core import TyperCommand

from mixpath.errors import MixPathError
from mixpath.io import describe_os_error

try:  # typer >= 0.22 carries its own copy of click, whose exceptions these are
    from typer._click import exceptions as click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

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
    sys.exit(run())


def run(args: Sequence[str] | None = None, *, fast_runtime: bool = True) -> int:
    """Run ``mixpath ARGS`` (default: the process's arguments) and return its exit status.

    Every error a user can cause ends here as one ``error:`` line on stderr and status 2: a MixPathError, a
    usage error of the command line (click's usage box and hint reduced to its message), and an OSError
    (named with its path and cause). ``fast_runtime=False`` runs in this process as it is (tests).
    """
    register_commands()
    try:
        status = app(args=args, prog_name="mixpath", obj={FAST_RUNTIME: fast_runtime}, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as err:  # ``mixpath`` alone: the help, as ever
        typer.echo(err.ctx.get_help() if err.ctx is not None else err.format_message())
        return 0
    except click_errors.UsageError as err:
        command = err.ctx.command_path if err.ctx is not None else "mixpath"
        return _error(f"{command}: {err.format_message()} (see {command} --help)")
    except click_errors.ClickException as err:
        return _error(err.format_message())
    except typer.Abort:
        return _error("interrupted")
    except MixPathError as err:
        return _error(str(err))
    except OSError as err:
        return _error(describe_os_error(err))
    return status if isinstance(status, int) else 0


def _error(message: str) -> int:
    """Print ``message`` as the one ``error:`` line and return the exit status of every user error."""
    typer.echo("error: " + " ".join(message.split()), err=True)
    return 2
