"""A supernet that learned nothing is named as such: a warning after training, and the pipeline stops before
searching it unless told to go on."""

import sys
from pathlib import Path

import pytest

from mixpath.cli import main
from mixpath.data import class_count, load_dataset
from mixpath.errors import MixPathError
from mixpath.io import write_json
from mixpath.pipeline import run_pipeline
from mixpath.training import TrainConfig, TrainResult
from mixpath.training.chance import untrained_warning

CONFIG = TrainConfig(space="tiny", data="digits", epochs=2, train_subset=1000)


def _trained(run_dir, *val_accs, config=CONFIG):
    """A run folder as training leaves it: config.json and metrics.csv with these sampled accuracies."""
    run_dir = Path(run_dir)
    write_json(run_dir / "config.json", config.to_json())
    rows = "".join(f"{epoch},2.3,{acc},{acc}\n" for epoch, acc in enumerate(val_accs, 1))
    (run_dir / "metrics.csv").write_text("epoch,train_loss,train_acc,val_acc_sampled\n" + rows)
    return TrainResult(run_dir, [{"epoch": len(val_accs), "val_acc_sampled": val_accs[-1]}])


def test_class_count_is_known_without_reading_the_data():
    assert class_count("digits") == load_dataset("digits").num_classes == 10
    assert class_count("fashion-mnist") == class_count("cifar10") == 10
    with pytest.raises(MixPathError, match="unknown dataset 'svhn'"):
        class_count("svhn")


def test_warning_when_the_last_epoch_is_within_a_few_points_of_chance(tmp_path):
    _trained(tmp_path, 40.0, 12.5)
    warning = untrained_warning(tmp_path)
    assert "after epoch 2 its sampled subnets reach 12.5 % validation accuracy" in warning
    assert "within 5 points of chance (10.0 % for 10 classes of digits)" in warning
    for change in ("--epochs, now 2", "--train-subset, now 1000", "--lr, now 0.1"):
        assert change in warning
    assert "\n" not in warning
    _trained(tmp_path, 12.5, 40.0)
    assert untrained_warning(tmp_path) is None
    assert untrained_warning(tmp_path / "never-trained") is None


def _pipeline_that_trains_nothing(monkeypatch):
    """run_pipeline with training replaced by a supernet at chance, and a search that says it was reached."""

    def search_supernet(*args, **kwargs):
        raise MixPathError("the search was reached")

    monkeypatch.setattr("mixpath.pipeline.train_supernet", lambda config, run_dir, **kwargs: _trained(run_dir, 10.2))
    monkeypatch.setattr("mixpath.pipeline.search_supernet", search_supernet)


def test_pipeline_stops_before_searching_an_untrained_supernet(tmp_path, monkeypatch):
    _pipeline_that_trains_nothing(monkeypatch)
    with pytest.raises(MixPathError, match=r"learned \(almost\) nothing.*To search it anyway: --allow-untrained"):
        run_pipeline(tmp_path, CONFIG, progress=False)
    with pytest.raises(MixPathError, match="the search was reached"):
        run_pipeline(tmp_path, CONFIG, allow_untrained=True, progress=False)


def test_pipeline_command_exits_2_with_the_message_unless_allowed(tmp_path, monkeypatch, capsys):
    _pipeline_that_trains_nothing(monkeypatch)
    monkeypatch.setenv("MIXPATH_FAST_RUNTIME", "0")  # main() must not re-execute pytest
    for extra, message in (([], "learned (almost) nothing"), (["--allow-untrained"], "the search was reached")):
        monkeypatch.setattr(sys, "argv", ["mixpath", "pipeline", str(tmp_path), "--space", "tiny", "--data", "digits"])
        sys.argv += extra
        with pytest.raises(SystemExit) as exit_status:
            main()
        assert exit_status.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0]
