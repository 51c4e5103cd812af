"""Every command shown in README.md and docs/*.md parses with the current command line, and runs.

Each command line of a fenced code block is parsed the way ``mixpath`` would parse it (click's
``make_context``), without running it: an unknown option or a wrong form fails here, in milliseconds,
instead of in a reader's terminal. Inline code (``mixpath search --run ...`` in a sentence, the synopses
of the README's command table) holds placeholders and elisions, so there every option it names must be
an option of that command.

The tests marked ``docs`` (``python3 -m pytest -m docs``; the default run leaves them out) also *run*
every ``mixpath`` command of the fenced blocks, in the documents' order, scaled down by one rule
(``scaled``): the options of ``SCALE`` are set to its small values where the command has them (replaced
when the document gives them, appended when not), and ``--allow-untrained`` is added where it exists
(a supernet of one epoch on 192 images learns nothing, and the pipeline rightly stops before searching
it). Each document runs in a folder of its own; the ones after the README start from the README tour's
trained and searched ``runs/s1``. Every other command of a fenced block (setup, tests, lint, benchmarks,
torchrun, data that cannot ship) is in ``SKIPPED`` with the reason, and so are the Python snippets not
run (``SNIPPETS``): a command or snippet in neither fails, so none escapes unnoticed.
"""

import json
import os
import random
import re
import shlex
import shutil
from pathlib import Path

import pytest
import typer

from mixpath.cli import app, register_commands, run

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


# ---- running them (marker: docs) ----

SCALE = {
    "--data": "digits",
    "--epochs": "1",
    "--train-subset": "192",
    "--batch-size": "32",
    "--retrain-epochs": "1",
    "--retrain-subset": "192",
    "--budget": "4",
    "--population": "4",
    "--archs": "3",
    "--calib-size": "64",
    "--images": "16",
    "--resamples": "50",
}
"""The scaled-down value of every option that sets a size: scikit-learn's digits (in memory, no download),
one epoch on 192 images in batches of 32 (FBNet holds a fifth of them out for its architecture steps),
4 architectures searched, 3 sampled, 64 calibration images."""
FLAGS = ("--allow-untrained",)
"""Flags added where a command has them."""
PROGRAMS = {"mixpath", "python", "python3", "bash", "pip", "torchrun", "ruff", "mypy", "pre-commit", "env"}
"""The first word of a line of a fenced block that makes it a command (other lines are output)."""
SKIPPED = {
    "bash setup.sh": "installs torch, mixpath and Fashion-MNIST; CI runs it before the suite",
    "python3 -m pytest": "the test suite itself",
    "ruff ": "lint; pre-commit and CI run it",
    "mypy": "type check; pre-commit and CI run it",
    "pre-commit install": "installs git hooks",
    "pip install": "installs packages (the dev extra holds the onnx ones)",
    "mixpath.kernels.runtime": "starts the reader's own program; tests/test_openmp_waiting.py "
    "checks what the module prints",
    "python benchmarks/run_all.py": "the 9-minute speed suite, for idle cores; tests/test_benchmarks.py runs its "
    "measurements at tiny sizes",
    "--data-dir /data/imagenet": "ImageNet cannot ship; tests/test_folder_runs.py trains, searches and retrains on "
    "generated image folders the same way, and with 2 gloo processes",
    "runs/photos": "the reader's own images; tests/test_folder_runs.py runs train, search and retrain on "
    "generated image folders",
    "python benchmarks/bench_loader.py": "the loader benchmark, for idle cores; tests/test_benchmarks.py runs its "
    "measurements at tiny sizes",
    "torchrun --standalone --nproc_per_node 8": "8 processes on CIFAR-10; tests/test_distributed.py runs torchrun "
    "--standalone with 2 processes on digits",
    "torchrun --nnodes 2": "two machines",
    "python experiments/ranking.py": "the ranking study, hours on 2 cores; tests/test_ranking_study.py runs its "
    "stages on a tiny protocol",
    "python experiments/remedies.py": "the ranking study's remedies, an hour on 2 cores; tests/test_remedies.py runs "
    "its stages on a tiny protocol",
    "python experiments/compare_methods.py": "the methods comparison, hours on idle cores; "
    "tests/test_compare_methods.py runs its stages on a tiny protocol",
    "--data cifar10 --data-dir /data/cifar-10-batches-py": "CIFAR-10 in /data cannot ship (and digits, grey, does "
    "not fit the 3-channel cifar-s1)",
    "runs/asc": "DCASE2018 task 5 (46 GB zipped) cannot ship; tests/test_asc.py trains and searches asc-s1 the same "
    "way on a generated WAV folder",
}
"""Commands of fenced blocks that the tests do not run: a substring of the command, and why."""
SPACE_FILE_SNIPPET = "my_space.py"
"""The README's "Declaring a search space" snippet, which it says is saved under this name."""
PLACEHOLDERS = {"<arch from the front>": lambda folder: front_arch(folder / "runs/s1")}


def shell_commands() -> list[tuple[str, str, list[str]]]:
    """(document, the command as written, its words) for every command of a fenced block, in order; ``a &&
    b`` is two commands."""
    found = []
    for document in DOCUMENTS:
        for block in FENCE.findall(document.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                try:
                    words = shlex.split(line, comments=True)
                except ValueError:
                    continue
                if not words or words[0] not in PROGRAMS:
                    continue
                command: list[str] = []
                for word in [*words, "&&"]:
                    if word in SEPARATORS - {"--"}:
                        found.append((document.name, shlex.join(command), command))
                        command = []
                    else:
                        command.append(word)
    return found


SHELL = shell_commands()


def skip_reason(text: str) -> str | None:
    return next((why for part, why in SKIPPED.items() if part in text), None)


def front_arch(run_dir: Path) -> str:
    """The most accurate architecture of the run's NSGA-II front, as the README's tour picks it by eye."""
    front = json.loads((run_dir / "search-nsga2" / "front.json").read_text())
    return max(front, key=lambda item: item["metrics"]["accuracy"])["arch"]


def scaled(words: list[str], folder: Path) -> list[str]:
    """``mixpath COMMAND ARGS`` scaled down: ``SCALE``'s options set where the command has them, ``FLAGS``
    added, placeholders filled in."""
    register_commands()
    group = typer.main.get_command(app)
    name, *args = words[1:]
    command = group.get_command(group.make_context("mixpath", [name]), name)
    known = {opt for param in command.params for opt in param.opts}
    args = [PLACEHOLDERS[arg](folder) if arg in PLACEHOLDERS else arg for arg in args]
    for option, value in SCALE.items():
        if option not in known:
            continue
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    return [name, *args, *(flag for flag in FLAGS if flag in known and flag not in args)]


def readme_space_snippet() -> str:
    section = (ROOT / "README.md").read_text().split("### Declaring a search space", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def mixpath_in(folder: Path, args: list[str]) -> int:
    """``mixpath ARGS`` in this process with ``folder`` as the working directory; its exit status."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        return run(args, fast_runtime=False)
    finally:
        os.chdir(here)


class Workspaces:
    """A folder per document, its commands run in order up to the one a test asks for (so that each test
    has what the commands before it made, also when run alone)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, int] = {}
        self.base: Path | None = None

    def folder(self, document: str) -> Path:
        folder = self.root / document
        if document not in self.done:
            if document == "README.md":
                folder.mkdir()
            else:
                shutil.copytree(self.readme_tour(), folder)
            (folder / SPACE_FILE_SNIPPET).write_text(readme_space_snippet())
            self.done[document] = 0
        return folder

    def readme_tour(self) -> Path:
        """A folder holding ``runs/s1`` as the README's tour trains and searches it (scaled down)."""
        if self.base is None:
            self.base = self.root / "tour"
            self.base.mkdir()
            for document, text, words in SHELL:
                if document == "README.md" and words[:2] in (["mixpath", "train"], ["mixpath", "search"]):
                    if "runs/s1" in words:
                        assert mixpath_in(self.base, scaled(words, self.base)) == 0, text
        return self.base

    def run_through(self, index: int) -> tuple[int, str]:
        """Run the commands of SHELL[index]'s document up to and including it; its exit status and the
        scaled command."""
        document = SHELL[index][0]
        folder = self.folder(document)
        mine = [i for i, (doc, text, words) in enumerate(SHELL) if doc == document and runs(text, words)]
        status, args = 0, []
        for i in mine[self.done[document] : mine.index(index) + 1]:
            args = scaled(SHELL[i][2], folder)
            status = mixpath_in(folder, args)
            self.done[document] += 1
            if status and i != index:
                pytest.fail(f"{SHELL[i][1]} (run as mixpath {shlex.join(args)}) failed before this one")
        return status, shlex.join(args)


def runs(text: str, words: list[str]) -> bool:
    return words[0] == "mixpath" and skip_reason(text) is None


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    return Workspaces(tmp_path_factory.mktemp("docs"))


def test_every_documented_command_is_run_or_skipped_with_a_reason():
    unclassified = [f"{doc}: {text}" for doc, text, words in SHELL if not runs(text, words) and not skip_reason(text)]
    assert not unclassified, f"add these to SKIPPED with the reason, or make them mixpath commands: {unclassified}"
    assert sum(runs(text, words) for _, text, words in SHELL) >= 15


@pytest.mark.docs
@pytest.mark.parametrize("index", range(len(SHELL)), ids=[f"{doc}: {text}" for doc, text, _ in SHELL])
def test_documented_command_runs(workspaces, index, capsys):
    document, text, words = SHELL[index]
    reason = skip_reason(text)
    if reason is not None:
        pytest.skip(reason)
    if not runs(text, words):
        pytest.fail(f"{document}: {text} is neither run nor in SKIPPED")
    status, args = workspaces.run_through(index)
    assert status == 0, f"{document}: {text}, run as mixpath {args}:\n{capsys.readouterr().err[-3000:]}"


SNIPPET_SCALE = {
    "epochs=5)": 'epochs=1, data="digits", train_subset=192)',
    "budget=300)": "budget=4, population=4)",
    "Recipe(epochs=8))": "Recipe(epochs=1, batch_size=32), train_subset=192)",
}
"""Python snippets scaled down as the commands are: the same sizes, by keyword argument."""
SNIPPETS = {
    ("README.md", "from mixpath.spaces import get_space"): None,
    ("fbnet_bsnas.md", "from mixpath.training import TrainConfig, train_supernet"): "a full fbnet epoch on "
    "fmnist-s1 (an hour on 2 cores); tests/test_fbnet.py makes the same calls on a two-layer space",
    ("README.md", "from mixpath.spaces import mbconv_space, register_space"): "run verbatim by "
    "tests/test_space_file.py, and as my_space.py by the commands here",
    ("distributed.md", "from mixpath import distributed"): "a fragment: run, space, m and config come from the "
    "text around it",
    ("evaluation.md", "from mixpath.evaluation import CalibrationSettings"): "a fragment: supernet, dataset, "
    "run_dir and arch come from the text around it",
    ("export.md", "import json"): "needs an image.png of the reader's",
    ("export.md", "import onnxruntime"): "a continuation of the snippet before it",
    ("export.md", "from mixpath.export import load_exported"): "a continuation of the snippets before it",
    ("imagenet.md", "import random"): "builds ImageNet-size supernets and models (minutes on 2 cores)",
    ("imagenet.md", "import functools"): "needs ImageNet in /data/imagenet",
    ("audio.md", "from mixpath.spaces import mbconv_space, register_space"): None,
    ("audio.md", "from mixpath.training import TrainConfig, train_supernet"): "needs DCASE2018 task 5 in data/",
    ("moga.md", "from mixpath.search import SearchConfig"): None,
    ("nas_benchmarks.md", "from mixpath.benchmarks_nas import load_benchmark_evaluator"): None,
}
"""Every Python snippet of the documents by (document, the start of its first line): None runs it (scaled by
``SNIPPET_SCALE``), else why not."""
PYTHON_FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
PYTHON = [
    (document.name, block.splitlines()[0], block)
    for document in DOCUMENTS
    for block in PYTHON_FENCE.findall(document.read_text())
]


def snippet_reason(document: str, first: str) -> str | None:
    """``SNIPPETS``' entry of a snippet (one not there is not run, and fails the test above)."""
    found = (why for (doc, start), why in SNIPPETS.items() if doc == document and first.startswith(start))
    return next(found, "not in SNIPPETS")


def test_every_python_snippet_is_run_or_skipped_with_a_reason():
    known = {(doc, start) for doc, start in SNIPPETS}
    unclassified = [(d, f) for d, f, _ in PYTHON if not any(d == doc and f.startswith(s) for doc, s in known)]
    assert not unclassified, f"add these to SNIPPETS: {unclassified}"


@pytest.mark.docs
@pytest.mark.parametrize(("document", "first", "code"), PYTHON, ids=[f"{d}: {f}" for d, f, _ in PYTHON])
def test_documented_python_snippet_runs(document, first, code, tmp_path, monkeypatch):
    reason = snippet_reason(document, first)
    if reason is not None:
        pytest.skip(reason)
    for text, small in SNIPPET_SCALE.items():
        code = code.replace(text, small)
    monkeypatch.chdir(tmp_path)
    random.seed(0)
    exec(compile(code, f"{document} snippet", "exec"), {"__name__": "snippet"})
