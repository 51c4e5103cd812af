import re
from pathlib import Path

import pytest
import torch

from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.training import TrainConfig, load_run, train_supernet
from mixpath.training.checkpoint import load_checkpoint, save_checkpoint
from mixpath.training.schedule import cosine_lr
from mixpath.training.trainer import CHECKPOINT_FILE


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=256)


def _config(**kw):
    base = dict(space="tiny", data="digits", epochs=2, batch_size=64, train_subset=256, eval_archs=1)
    return TrainConfig(**{**base, **kw})


def _weights(run_dir):
    return load_checkpoint(run_dir / CHECKPOINT_FILE)["model"]


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("strategy", ["mixpath", "fairnas"])
def test_resume_equals_uninterrupted(tmp_path, digits, strategy):
    m = 4 if strategy == "mixpath" else 1
    whole = tmp_path / "whole"
    train_supernet(_config(strategy=strategy, m=m), whole, progress=False, dataset=digits)
    cut = tmp_path / "cut"
    # killed mid-epoch 1, then again at the epoch boundary, then finished
    train_supernet(_config(strategy=strategy, m=m), cut, progress=False, dataset=digits, stop_after_steps=2)
    assert load_checkpoint(cut / CHECKPOINT_FILE)["step"] == 2
    train_supernet(None, cut, resume=True, progress=False, dataset=digits, stop_after_steps=2)
    assert load_checkpoint(cut / CHECKPOINT_FILE)["epoch"] == 1
    result = train_supernet(None, cut, resume=True, progress=False, dataset=digits)
    _assert_same(_weights(whole), _weights(cut))
    assert result.last["epoch"] == 2
    assert (cut / "metrics.csv").read_text().count("\n") == 3


def test_training_learns_and_writes_the_run_folder(tmp_path, digits):
    run = tmp_path / "run"
    result = train_supernet(_config(epochs=3, lr=0.1), run, progress=False, dataset=digits)
    assert result.metrics[0]["train_loss"] > result.metrics[-1]["train_loss"]
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint.pt", "metrics.csv", "train.log"}
    loaded = load_run(run, device="cpu")
    assert loaded.config.space == "tiny"
    _assert_same(loaded.supernet.state_dict(), _weights(run))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, digits):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train_supernet(_config(epochs=1, seed=seed), tmp_path / name, progress=False, dataset=digits)
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not torch.equal(
        _weights(tmp_path / "a")["head.classifier.weight"], _weights(tmp_path / "c")["head.classifier.weight"]
    )


def test_nan_loss_stops_with_a_clear_message(tmp_path, digits):
    with pytest.raises(MixPathError, match=r"loss became (nan|inf) at epoch 1 step \d+ .*lower --lr"):
        train_supernet(_config(lr=1e30, grad_clip=0.0), tmp_path / "nan", progress=False, dataset=digits)


def test_run_folder_misuse_is_a_one_line_error(tmp_path, digits):
    run = tmp_path / "run"
    train_supernet(_config(epochs=1), run, progress=False, dataset=digits)
    with pytest.raises(MixPathError, match="already holds a run"):
        train_supernet(_config(epochs=1), run, progress=False, dataset=digits)
    with pytest.raises(MixPathError, match=r"with other settings: lr=0.5 given, 0.1 saved"):
        train_supernet(_config(epochs=1, lr=0.5), run, resume=True, progress=False, dataset=digits)
    with pytest.raises(MixPathError, match="nothing to resume"):
        train_supernet(None, tmp_path / "empty", resume=True, progress=False, dataset=digits)
    with pytest.raises(MixPathError, match="not a mixpath run folder"):
        load_run(tmp_path / "empty")


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(MixPathError, match="corrupt or not a mixpath checkpoint"):
        load_checkpoint(path)


def test_bad_settings_are_rejected():
    with pytest.raises(MixPathError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(MixPathError, match="unknown BN policy"):
        TrainConfig(bn_policy="group")
    for strategy in ("spos", "fairnas"):  # refused when the settings are made, not when training starts
        with pytest.raises(MixPathError, match=f"^strategy '{strategy}' trains single paths: m must be 1, got m=4$"):
            TrainConfig(strategy=strategy)
        assert TrainConfig(strategy=strategy, m=1).m == 1
    with pytest.raises(MixPathError, match="^unknown path_sampling 'fair'; choose one of: uniform, branch-fair$"):
        TrainConfig(path_sampling="fair")
    with pytest.raises(MixPathError, match="^path_sampling='branch-fair' is for strategy mixpath; spos draws no"):
        TrainConfig(strategy="spos", m=1, path_sampling="branch-fair")


def test_branch_fair_path_sampling_reaches_the_trainer(tmp_path, digits):
    for name, sampling in (("uniform", "uniform"), ("fair", "branch-fair"), ("fair2", "branch-fair")):
        train_supernet(_config(epochs=1, path_sampling=sampling), tmp_path / name, progress=False, dataset=digits)
    assert load_run(tmp_path / "fair", device="cpu").config.path_sampling == "branch-fair"
    _assert_same(_weights(tmp_path / "fair"), _weights(tmp_path / "fair2"))
    uniform, fair = _weights(tmp_path / "uniform"), _weights(tmp_path / "fair")
    assert any(not torch.equal(uniform[key], fair[key]) for key in uniform)  # other paths were trained


def test_the_default_recipe_is_the_one_the_readme_states():
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    stated = re.search(
        r"\*\*The default training recipe\*\*.*?SGD lr ([\d.]+) after ([\d.]+) linear warm-up epoch, then cosine to 0; "
        r"(\d+) epochs of batch (\d+); momentum ([\d.]+), weight decay ([\de.-]+), gradient clip ([\d.]+)\.",
        text,
    )
    assert stated, "README.md no longer states the default recipe in the form this test reads"
    default = TrainConfig()
    lr, warmup, epochs, batch, momentum, decay, clip = stated.groups()
    assert (default.lr, default.warmup_epochs, default.epochs, default.batch_size) == (
        float(lr),
        float(warmup),
        int(epochs),
        int(batch),
    )
    assert (default.momentum, default.weight_decay, default.grad_clip) == (float(momentum), float(decay), float(clip))
    assert (default.space, default.strategy, default.m, default.bn_policy) == ("fmnist-s1", "mixpath", 4, "shadow")


def test_cosine_schedule_ends_at_zero():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0)


def test_warmup_rises_linearly_then_cosine_covers_the_rest():
    lrs = [cosine_lr(0.4, step, 110, warmup_steps=10) for step in range(111)]
    assert lrs[:10] == pytest.approx([0.04 * (i + 1) for i in range(10)])
    assert lrs[10] == pytest.approx(0.4)  # the peak, then the cosine over the remaining 100 steps
    assert lrs[60] == pytest.approx(0.2)
    assert lrs[110] == pytest.approx(0.0)
    assert max(lrs) == pytest.approx(0.4)
    assert TrainConfig(epochs=10, warmup_epochs=2).effective_warmup_epochs == 2
    assert TrainConfig(epochs=1, warmup_epochs=2).effective_warmup_epochs == 0.5  # a short run keeps a decay
    with pytest.raises(MixPathError, match="warmup_epochs=-1"):
        TrainConfig(warmup_epochs=-1)


def test_checkpoint_records_the_kernels_and_a_resume_across_a_change_warns(tmp_path, digits, caplog):
    from mixpath.kernels import kernels_in_use

    run = tmp_path / "run"
    train_supernet(_config(), run, progress=False, dataset=digits, stop_after_steps=2)
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert state["kernels"] == kernels_in_use()
    train_supernet(None, run, resume=True, progress=False, dataset=digits, stop_after_steps=1)
    assert "numbers will differ" not in caplog.text  # same kernels: silent
    state = load_checkpoint(run / CHECKPOINT_FILE)
    state["kernels"] = "mixpath-kernels sha256:0000000000000000"  # written by another build
    save_checkpoint(run / CHECKPOINT_FILE, state)
    train_supernet(None, run, resume=True, progress=False, dataset=digits, stop_after_steps=1)
    assert "numbers will differ from an uninterrupted run's" in caplog.text
