"""The first hour with the command line: one grammar for the run folder, help that states units and defaults,
readable summaries, --version, and a start that does not wait for torch."""

import dataclasses
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mixpath.cli import app, register_commands
from mixpath.cli.options import CALIBRATION, RECIPE, TRAIN
from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings
from mixpath.io import write_json
from mixpath.training import Recipe, TrainConfig, TrainResult

register_commands()
RUN_COMMANDS = ("train", "evaluate", "search", "export", "retrain", "pipeline", "rank", "report")
"""Every command that works on a run folder."""


def _commands():
    return typer.main.get_command(app).commands


def _parse(*args):
    """Parse ``mixpath ARGS`` the way the command would, without running it; a usage error raises."""
    group = typer.main.get_command(app)
    name, *rest = args
    parent = group.make_context("mixpath", [name])
    return group.get_command(parent, name).make_context(name, list(rest), parent=parent)


@pytest.mark.parametrize("name", RUN_COMMANDS)
def test_every_run_folder_command_takes_run_as_argument_and_as_option(name):
    extra = {"evaluate": ["--arch", "k3"], "rank": ["--ground-truth", "gt.csv"]}.get(name, [])
    assert _parse(name, "runs/x", *extra).params["run"] == Path("runs/x")
    assert _parse(name, "--run", "runs/x", *extra).params["run_alias"] == Path("runs/x")


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "{run}", "--arch", "k3"],
        ["evaluate", "--run", "{run}", "--arch", "k3"],
        ["search", "--run", "{run}"],
        ["export", "--run", "{run}"],
        ["retrain", "{run}"],
        ["retrain", "--from-front", "{run}"],
        ["report", "--run", "{run}", "--html"],
    ],
)
def test_both_spellings_reach_the_run_folder(tmp_path, args):
    run = tmp_path / "nowhere"
    result = CliRunner().invoke(app, [arg.replace("{run}", str(run)) for arg in args])
    assert isinstance(result.exception, MixPathError), result.output
    assert str(run) in str(result.exception)


def test_run_folder_given_twice_or_not_at_all_is_a_usage_error():
    runner = CliRunner()
    twice = runner.invoke(app, ["evaluate", "runs/a", "--run", "runs/b", "--arch", "k3"])
    assert twice.exit_code == 2 and "two run folders given" in twice.output
    missing = runner.invoke(app, ["evaluate", "--arch", "k3"])
    assert missing.exit_code == 2 and "give the run folder as RUN" in missing.output


def _front_run(folder, searches):
    """A run folder with config.json and one front.json per search: (arch, accuracy) pairs."""
    write_json(folder / "config.json", TrainConfig(space="tiny", data="digits").to_json())
    for algo, entries in searches.items():
        front = [{"arch": arch, "metrics": {"accuracy": acc, "flops": 1.0}} for arch, acc in entries]
        write_json(folder / f"search-{algo}" / "front.json", front)


def test_export_without_arch_finds_the_search_that_exists(tmp_path, monkeypatch):
    exported = []
    monkeypatch.setattr(
        "mixpath.workflow.export_architecture",
        lambda run, arch, out, **kwargs: exported.append(str(arch)) or ([], {"flops": 1.0}),
    )
    _front_run(tmp_path, {"evolution": [("e6:k3-e3:k3-e6:k5", 60.0), ("e3:k3-e3:k3-e3:k3", 40.0)]})
    result = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert exported == ["e6:k3-e3:k3-e6:k5"]
    _front_run(tmp_path, {"nsga2": [("e3:k3-e3:k3-e3:k3", 50.0)]})
    several = CliRunner().invoke(app, ["export", str(tmp_path)])
    assert isinstance(several.exception, MixPathError)
    assert "several searches (evolution, nsga2); choose one with --algo" in str(several.exception)
    chosen = CliRunner().invoke(app, ["export", str(tmp_path), "--algo", "nsga2"])
    assert chosen.exit_code == 0 and exported[-1] == "e3:k3-e3:k3-e3:k3"


def test_every_option_says_what_it_is_and_its_default():
    for name, command in _commands().items():
        ctx = typer.Context(command, info_name=name)
        for param in command.params:
            assert param.help, f"mixpath {name}: {param.name} has no help"
            if param.param_type_name != "option" or param.is_flag or param.name == "run_alias":  # alias: RUN's
                continue
            record = param.get_help_record(ctx)[1]
            assert "[default:" in record or "[required]" in record, f"mixpath {name} {param.opts}: {record}"


def test_every_command_computes_where_auto_says():
    devices = {name: p.default for name, c in _commands().items() for p in c.params if p.name == "device"}
    assert devices and set(devices.values()) == {"auto"}, devices


@pytest.mark.parametrize(("shown", "cls"), [(TRAIN, TrainConfig), (RECIPE, Recipe), (CALIBRATION, CalibrationSettings)])
def test_help_shows_the_dataclasses_own_defaults(shown, cls):
    defaults = {f.name: str(f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    assert {name: shown[name] for name in defaults} == defaults


@dataclasses.dataclass(frozen=True)
class _OtherRecipe(TrainConfig):
    """TrainConfig with other defaults: the command must not pass values of its own."""

    epochs: int = 7
    lr: float = 0.1
    warmup_epochs: float = 0.5


def _fake_training(calls, row):
    def train_supernet(config, run, **kwargs):
        calls.append(config)
        return TrainResult(Path(run), [row])

    return train_supernet


ROW = {"epoch": 7, "train_loss": 0.41, "train_acc": 86.2, "val_acc_sampled": 80.5, "images_per_s": 900.0}


def test_train_takes_its_defaults_from_trainconfig_and_prints_lines_or_json(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("mixpath.training.TrainConfig", _OtherRecipe)
    monkeypatch.setattr("mixpath.training.train_supernet", _fake_training(calls, ROW))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (calls[0].epochs, calls[0].lr, calls[0].warmup_epochs) == (7, 0.1, 0.5)
    lines = result.stdout.splitlines()
    assert lines[0] == f"run:             {tmp_path / 'run'}" and "{" not in result.stdout
    assert "sampled subnets: 80.5 % validation accuracy" in result.stdout
    machine = CliRunner().invoke(app, ["train", str(tmp_path / "run"), "--json"])
    assert json.loads(machine.stdout) == {"run": str(tmp_path / "run"), **ROW}


def test_train_warns_when_the_supernet_stays_at_chance(tmp_path, monkeypatch):
    def at_chance(config, run, **kwargs):
        write_json(Path(run) / "config.json", config.to_json())
        (Path(run) / "metrics.csv").write_text("epoch,val_acc_sampled\n1,11.2\n")
        return TrainResult(Path(run), [{"epoch": 1, "val_acc_sampled": 11.2}])

    monkeypatch.setattr("mixpath.training.train_supernet", at_chance)
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--space", "tiny", "--data", "digits"])
    assert result.exit_code == 0
    assert "warning: the supernet in" in result.stderr and "chance (10.0 % for 10 classes" in result.stderr


def test_metrics_are_printed_with_their_units(monkeypatch):
    metrics = {"arch": "k3", "accuracy": 55.1, "loss": 1.25, "flops": 8.83, "params": 0.295}
    monkeypatch.setattr("mixpath.workflow.evaluate_architecture", lambda *args: metrics)
    result = CliRunner().invoke(app, ["evaluate", "runs/x", "--arch", "k3"])
    assert result.exit_code == 0, result.output
    for text in ("accuracy: 55.1 %", "flops:    8.83 M multiply-adds", "params:   0.295 M params"):
        assert text in result.stdout


SUMMARY = {
    "budget": {"max_flops": 8.2, "rule": "given"},
    "training": ROW,
    "search": {"evaluated": 12, "front": 3, "results": "runs/demo/search-nsga2"},
    "retraining": {"recipe": {"epochs": 1}, "seed": 0, "train_images": 1000, "test_images": 360},
    "rows": [
        {"role": "found", "arch": "a", "flops": 8.0, "params": 0.3, "supernet_score": 50.0, "test_acc": 90.0},
        {"role": "random", "arch": "b", "flops": 8.1, "params": 0.2, "supernet_score": 40.0, "test_acc": 89.0},
    ],
    "verdict": "the found architecture beats random",
    "files": {"table": "t.csv", "report": "r.html", "model": "export"},
    "seconds": {"training": 1.5, "search": 2.0},
}


def test_pipeline_prints_aligned_lines_or_json(monkeypatch):
    seen = {}
    monkeypatch.setattr("mixpath.pipeline.run_pipeline", lambda *args, **kwargs: seen.update(kwargs) or SUMMARY)
    result = CliRunner().invoke(app, ["pipeline", "--quick"])
    assert result.exit_code == 0, result.output
    assert seen["allow_untrained"] is True  # a smoke run's supernet learns nothing: warned, not stopped
    assert "{" not in result.stdout and "supernet:       epochs trained 7, train loss 0.41" in result.stdout
    assert "verdict:        the found architecture beats random" in result.stdout
    assert "time:           training 1.5 s, search 2.0 s" in result.stdout
    machine = CliRunner().invoke(app, ["pipeline", "--json", "--allow-untrained"])
    assert json.loads(machine.stdout) == SUMMARY and seen["allow_untrained"] is True
    CliRunner().invoke(app, ["pipeline"])
    assert seen["allow_untrained"] is False


def test_version_is_the_installed_packages():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"mixpath {metadata.version('mixpath')}\n"
    module = subprocess.run([sys.executable, "-m", "mixpath", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout == result.stdout  # python3 -m mixpath: the same command


STARTUP = """
import os, sys
executed = []
os.execve = lambda *args: executed.append(args)  # the fast-runtime re-exec, recorded instead of done
from mixpath.cli import main

def mixpath(*args):
    sys.argv = ["mixpath", *args]
    try:
        main()
    except SystemExit:
        pass

for args in [["--help"], ["--version"], *([name, "--help"] for name in sys.argv[1:])]:
    mixpath(*args)
heavy = sorted(name for name in ("torch", "pymoo", "matplotlib") if name in sys.modules)
print("heavy:", heavy, "re-executed:", len(executed), file=sys.stderr)
mixpath("spaces")
print("after a command, re-executed:", len(executed), file=sys.stderr)
"""


def test_help_and_version_import_no_torch_and_do_not_reexecute():
    chosen = ("MIXPATH_FAST_RUNTIME", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # settings that would skip the re-exec
    env = {key: value for key, value in os.environ.items() if key not in chosen}
    names = list(_commands())
    done = subprocess.run([sys.executable, "-c", STARTUP, *names], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "heavy: [] re-executed: 0" in done.stderr
    assert "after a command, re-executed: 1" in done.stderr  # a command that runs still gets the fast runtime
