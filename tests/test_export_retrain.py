import random

import pytest
import torch

from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.export import Preprocessing, export_model, load_exported
from mixpath.supernet import build_standalone, build_supernet
from mixpath.training import Recipe
from mixpath.training.standalone import init_seed, train_standalone


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=320)


def test_export_round_trips_with_and_without_mixpath(tmp_path, tiny):
    net = build_supernet(tiny, 4).eval()
    arch = tiny.random_architecture(random.Random(0), 4)
    sub = net.extract(arch).eval()
    preprocessing = Preprocessing(mean=(0.3,), std=(0.4,), class_names=tuple("abcdefghij"))
    export_model(
        sub, tiny, arch, tmp_path, preprocessing=preprocessing, metrics={"accuracy": 12.5}, export_program=True
    )
    x = torch.randn(5, 1, 8, 8)
    model, space, loaded_arch = load_exported(tmp_path)
    assert loaded_arch == arch and space is tiny
    with torch.no_grad():
        torch.testing.assert_close(model(x), sub(x))
        # plain PyTorch: the state dict bundle and the exported program, no mixpath classes needed
        bundle = torch.load(tmp_path / "model.pt", weights_only=True)
        assert bundle["arch"] == str(arch) and bundle["metrics"] == {"accuracy": 12.5}
        assert bundle["preprocessing"] == preprocessing.as_dict()
        program = torch.export.load(tmp_path / "model.pt2").module()  # raw pixels in, normalised inside
        torch.testing.assert_close(program(x), sub((x - 0.3) / 0.4))


def test_loading_a_foreign_file_is_a_one_line_error(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MixPathError, match="corrupt or not a mixpath export"):
        load_exported(tmp_path)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(MixPathError, match="not a mixpath export"):
        load_exported(tmp_path / "other.pt")


def test_retrain_learns_and_resumes_to_the_same_weights(tmp_path, tiny, digits):
    arch = tiny.parse("e6:k3+k5-e3:k3-e6:k5", 4)
    recipe = Recipe(epochs=3, batch_size=32, lr=0.1)
    init_seed(0)
    whole = build_standalone(tiny, arch)
    result = train_standalone(whole, digits, recipe, seed=0, progress=False)
    assert result["val_acc"] > 40.0  # 10 classes: chance is 10%
    assert 0.0 <= result["test_acc"] <= 100.0

    ckpt = tmp_path / "retrain.pt"
    init_seed(0)
    cut = build_standalone(tiny, arch)
    assert (
        train_standalone(cut, digits, recipe, seed=0, progress=False, checkpoint_path=ckpt, stop_after_epochs=1) is None
    )
    init_seed(1)  # the resumed process builds its model afresh; the checkpoint restores it
    resumed = build_standalone(tiny, arch)
    again = train_standalone(resumed, digits, recipe, seed=0, progress=False, checkpoint_path=ckpt)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert again["val_acc"] == result["val_acc"]
