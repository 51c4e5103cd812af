"""Every ``mixpath ...`` command shown in README.md and docs/*.md parses with the current command line.

Each command line of a fenced code block is parsed the way ``mixpath`` would parse it (click's
``make_context``), without running it: an unknown option or a wrong form fails here, in milliseconds,
instead of in a reader's terminal. Inline code (``mixpath search --run ...`` in a sentence, the synopses
of the README's command table) holds placeholders and elisions, so there every option it names must be
an option of that command. That the documented commands also *run* needs scaled-down runs of each,
which these tests do not do.
"""

import re
import shlex
from pathlib import Path

import pytest
import typer

from mixpath.cli import app, register_commands

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SEPARATORS = {"&&", "||", ";", "|", "--"}
"""Tokens after which a shell command (or torchrun's program) starts."""


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments after ``mixpath``) for every ``mixpath`` command in a fenced block of the documents."""
    found = []
    for document in DOCUMENTS:
        for block in FENCE.findall(document.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError:  # not shell (a JSON or Python line with an odd quote)
                    continue
                for start, token in enumerate(tokens):
                    if token == "mixpath" and (start == 0 or tokens[start - 1] in SEPARATORS):
                        rest = tokens[start + 1 :]
                        end = next((i for i, t in enumerate(rest) if t in SEPARATORS - {"--"}), len(rest))
                        found.append((f"{document.name}: {line.strip()}", rest[:end]))
    return found


def inline_commands() -> list[tuple[str, list[str]]]:
    """(where, words after ``mixpath``) for every inline code span outside fenced blocks that runs mixpath,
    except ``mixpath COMMAND ...`` (a placeholder for any command)."""
    found = []
    for document in DOCUMENTS:
        for span in re.findall(r"`([^`\n]+)`", FENCE.sub("", document.read_text())):
            match = re.search(r"(?:^|-- |&& )mixpath (.*)$", span)
            if match and not match.group(1).split()[0].isupper():
                found.append((f"{document.name}: {span}", match.group(1).split()))
    return found


COMMANDS = documented_commands()
INLINE = inline_commands()


def test_the_documents_show_commands():
    assert len(COMMANDS) >= 15, COMMANDS
    assert {args[0] for _, args in COMMANDS} >= {"train", "evaluate", "search", "export", "retrain", "pipeline"}


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where, args):
    register_commands()
    group = typer.main.get_command(app)
    name, *rest = args
    parent = group.make_context("mixpath", [name])
    command = group.get_command(parent, name)
    assert command is not None, f"{where}: no command {name!r}"
    command.make_context(name, rest, parent=parent)  # raises a UsageError on anything the command would refuse


@pytest.mark.parametrize(("where", "words"), INLINE, ids=[where for where, _ in INLINE])
def test_options_named_inline_exist(where, words):
    register_commands()
    group = typer.main.get_command(app)
    command = (
        group if words[0].startswith("--") else group.get_command(group.make_context("mixpath", [words[0]]), words[0])
    )
    assert command is not None, f"{where}: no command {words[0]!r}"
    known = {opt for param in command.params for opt in param.opts} | {"--help"}
    named = set(re.findall(r"--[a-z][a-z0-9-]*", " ".join(words)))
    assert named <= known, f"{where}: {sorted(named - known)} not options of mixpath {words[0]}"
