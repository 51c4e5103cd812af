"""Distributed training and sharded search with 2 local gloo processes on the CPU.

Workers run in processes started by ``torch.multiprocessing.spawn`` with the environment torchrun would
give them (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); they write what they saw to files
that the test then compares with a one-process run in the test process.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mixpath import distributed
from mixpath.data import AugmentConfig, load_dataset
from mixpath.errors import MixPathError
from mixpath.evaluation.sharded import ShardedEvaluator
from mixpath.search import SearchConfig, make_searcher
from mixpath.search.synthetic import SyntheticEvaluator
from mixpath.spaces import get_space
from mixpath.training import TrainConfig, TrainResult, make_sampler, train_supernet
from mixpath.training.checkpoint import load_checkpoint
from mixpath.training.seeding import step_rng
from mixpath.training.trainer import CHECKPOINT_FILE, autocast_dtype, check_batch_split

WORLD = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, port: int, worker, args) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    distributed.setup("cpu", timeout_minutes=1.0)
    try:
        worker(rank, *args)
    finally:
        distributed.shutdown()


def _launch(worker, *args) -> None:
    """Run ``worker(rank, *args)`` in WORLD processes of one gloo process group.

    Forked rather than spawned: the children inherit the imported modules (torch, mixpath, the data),
    which saves seconds per launch on 2 cores; torchrun itself is exercised by the CLI test below.
    """
    _digits(augment=True), _digits(augment=False)  # loaded here once, inherited by the workers
    mp.start_processes(_entry, args=(_free_port(), worker, args), nprocs=WORLD, join=True, start_method="fork")


@functools.cache
def _digits(augment: bool = True):
    """Loaded once; forked workers inherit it."""
    data = load_dataset("digits", train_subset=128)
    # digits ships without augmentation; switch it on so the sharding of augmented batches is tested too
    return dataclasses.replace(data, augment=AugmentConfig(crop_padding=1, flip=True)) if augment else data


def _config(**kw) -> TrainConfig:
    base = dict(space="tiny", data="digits", epochs=2, batch_size=32, train_subset=128, eval_archs=1)
    return TrainConfig(**{**base, **kw})


def _parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


# ---------------------------------------------------------------- training


def _float64_digits():
    """Training in float64 here: the tiny net amplifies float32 rounding differences (summation order of
    FairNAS's 8 models, BN over near-constant channels) from 1e-7 to 1e-3 within 3 steps, which would hide
    whether the distributed step is exact; in float64 it equals the one-process step to 1e-16."""
    data = _digits()
    return dataclasses.replace(data, train_x=data.train_x.double(), val_x=data.val_x.double())


def _train_float64(config: TrainConfig, run_dir: Path, steps: int) -> TrainResult:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the supernet's weights
    try:
        return train_supernet(config, run_dir, dataset=_float64_digits(), progress=False, stop_after_steps=steps)
    finally:
        torch.set_default_dtype(before)


def _train_worker(rank: int, out: Path, strategy: str, m: int, steps: int) -> None:
    result = _train_float64(_config(strategy=strategy, m=m), out / "run", steps)
    torch.save(_parameters(result.supernet), out / f"rank{rank}.pt")
    sampler = make_sampler(strategy, get_space("tiny"), m)
    drawn = [[str(a) for a in sampler.step_architectures(step_rng(0, "arch", 0, s))] for s in range(steps)]
    (out / f"archs{rank}.json").write_text(json.dumps(drawn))


@pytest.mark.slow
@pytest.mark.parametrize("strategy,m", [("mixpath", 4), ("fairnas", 1)])
def test_two_ranks_train_what_one_process_trains_on_the_same_global_batch(tmp_path, strategy, m):
    steps = 5  # crosses the end of epoch 1 (4 steps of 32 images)
    _launch(_train_worker, tmp_path, strategy, m, steps)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # bitwise: same averaged gradients
    archs = [json.loads((tmp_path / f"archs{r}.json").read_text()) for r in range(WORLD)]
    assert archs[0] == archs[1] and len({tuple(a) for a in archs[0]}) > 1

    # one process, each step's 32 images in 2 micro-batches of 16: the BN batches of the 2 ranks
    single = _parameters(
        _train_float64(_config(strategy=strategy, m=m, micro_batches=WORLD), tmp_path / "1", steps).supernet
    )
    initial = _parameters(_untrained(strategy, m))
    assert single.keys() == ranks[0].keys()
    for name, value in single.items():
        assert ranks[0][name].dtype == torch.float64
        torch.testing.assert_close(ranks[0][name], value, rtol=0, atol=1e-12, msg=name)
    assert sum(not torch.allclose(value.float(), initial[name]) for name, value in single.items()) > len(single) // 2

    # and not what one process trains with BN over all 32 images: per-rank BN statistics are real
    whole = _parameters(_train_float64(_config(strategy=strategy, m=m), tmp_path / "whole", steps).supernet)
    assert any(not torch.allclose(value, ranks[0][name], atol=1e-4) for name, value in whole.items())


def _untrained(strategy: str, m: int) -> torch.nn.Module:
    from mixpath.supernet import build_supernet
    from mixpath.training.seeding import derive_seed

    torch.manual_seed(derive_seed(0, "init"))
    return build_supernet(get_space("tiny"), m, "shadow")


def _resume_worker(rank: int, out: Path, phase: str) -> None:
    data = _digits()
    if phase == "first":
        train_supernet(_config(), out / "whole", dataset=data, progress=False)
        train_supernet(_config(), out / "cut", dataset=data, progress=False, stop_after_steps=3)
    else:
        result = train_supernet(None, out / "cut", resume=True, dataset=data, progress=False)
        torch.save(result.supernet.state_dict(), out / f"resumed{rank}.pt")


@pytest.mark.slow
def test_killed_distributed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    _launch(_resume_worker, tmp_path, "first")
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)["step"] == 3
    _launch(_resume_worker, tmp_path, "second")  # a new launch, as after a crash
    whole = load_checkpoint(tmp_path / "whole" / CHECKPOINT_FILE)
    cut = load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)
    assert (cut["epoch"], cut["world_size"]) == (2, WORLD)
    for key, value in whole["model"].items():
        assert torch.equal(value, cut["model"][key]), key
    resumed = [torch.load(tmp_path / f"resumed{r}.pt") for r in range(WORLD)]
    for key, value in whole["model"].items():  # BN statistics included: rank 0's are copied to all
        assert torch.equal(resumed[0][key], value) and torch.equal(resumed[1][key], value), key
    assert [r["train_loss"] for r in cut["metrics"]] == [r["train_loss"] for r in whole["metrics"]]
    assert (tmp_path / "cut" / "metrics.csv").read_text().count("\n") == 3


# ---------------------------------------------------------------- search


def _search_config() -> SearchConfig:
    return SearchConfig(objectives=("accuracy", "flops"), budget=36, population=8, seed=3)


def _records(result) -> list:
    return {
        "evaluated": [(str(r.arch), r.metrics, r.feasible, r.generation) for r in result.evaluated],
        "history": [{k: v for k, v in entry.items() if k != "score_seconds"} for entry in result.history],  # wall time
        "front": [str(r.arch) for r in result.front],
    }


def _search_worker(rank: int, out: Path) -> None:
    space = get_space("tiny")
    found = {}
    for algo in ("random", "evolution", "nsga2"):
        inner = SyntheticEvaluator(space, m=2)
        result = make_searcher(algo).run(space, 2, ShardedEvaluator(inner), _search_config())
        found[algo] = {"records": _records(result), "mine": [str(a) for a in inner.evaluated]}
    (out / f"search{rank}.json").write_text(json.dumps(found))


@pytest.mark.slow
def test_sharded_search_returns_exactly_the_single_process_result(tmp_path):
    _launch(_search_worker, tmp_path)
    ranks = [json.loads((tmp_path / f"search{r}.json").read_text()) for r in range(WORLD)]
    space = get_space("tiny")
    for algo in ("random", "evolution", "nsga2"):
        single = make_searcher(algo).run(space, 2, SyntheticEvaluator(space, m=2), _search_config())
        expected = json.loads(json.dumps(_records(single)))
        assert ranks[0][algo]["records"] == expected and ranks[1][algo]["records"] == expected, algo
        shares = [set(r[algo]["mine"]) for r in ranks]
        assert not shares[0] & shares[1], algo  # each architecture scored by one rank only
        assert shares[0] | shares[1] == {arch for arch, *_ in expected["evaluated"]}, algo
        assert abs(len(shares[0]) - len(shares[1])) <= 8, algo


def _supernet_search_worker(rank: int, out: Path) -> None:
    from mixpath.evaluation import CalibrationSettings, SupernetEvaluator

    supernet = _untrained("mixpath", 2)
    inner = SupernetEvaluator(supernet, _digits(augment=False), calibration=CalibrationSettings(size=64, batch_size=32))
    archs = [get_space("tiny").random_architecture(step_rng(1, "arch", i), 2) for i in range(5)]
    scores = ShardedEvaluator(inner).evaluate(archs)
    (out / f"scores{rank}.json").write_text(json.dumps({"archs": [str(a) for a in archs], "scores": scores}))


@pytest.mark.slow
def test_sharded_supernet_evaluator_scores_exactly_what_one_process_scores(tmp_path):
    from mixpath.evaluation import CalibrationSettings, SupernetEvaluator

    _launch(_supernet_search_worker, tmp_path)
    ranks = [json.loads((tmp_path / f"scores{r}.json").read_text()) for r in range(WORLD)]
    space = get_space("tiny")
    archs = [space.random_architecture(step_rng(1, "arch", i), 2) for i in range(5)]
    single = SupernetEvaluator(
        _untrained("mixpath", 2), _digits(augment=False), calibration=CalibrationSettings(size=64, batch_size=32)
    ).evaluate(archs)
    assert ranks[0]["archs"] == [str(a) for a in archs]
    assert ranks[0]["scores"] == ranks[1]["scores"] == json.loads(json.dumps(single))
    assert len({s["accuracy"] for s in single}) > 1


def _failing_worker(rank: int, out: Path) -> None:
    class Picky:
        def evaluate(self, archs):
            if rank == 1:
                raise MixPathError("cannot score on rank 1")
            return [{"accuracy": 1.0} for _ in archs]

    archs = [get_space("tiny").random_architecture(step_rng(0, "arch", i), 1) for i in range(4)]
    try:
        ShardedEvaluator(Picky()).evaluate(archs)
    except MixPathError as err:
        (out / f"error{rank}.txt").write_text(str(err))


@pytest.mark.slow
def test_an_error_on_one_rank_is_raised_on_every_rank(tmp_path):
    _launch(_failing_worker, tmp_path)
    assert [(tmp_path / f"error{r}.txt").read_text() for r in range(WORLD)] == ["cannot score on rank 1"] * WORLD


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mixpath") is None, reason="the mixpath command is not installed")
def test_mixpath_train_runs_unchanged_under_torchrun(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    # "--" ends torchrun's options: without it argparse takes mixpath's --run and --m for abbreviations
    # of torchrun's --run-path and --master-addr/--max-restarts and refuses them as ambiguous
    command += ["--no-python", "--", "mixpath", "train", "--run", str(run), "--space", "tiny", "--m", "2"]
    command += ["--data", "digits", "--train-subset", "128", "--batch-size", "32", "--epochs", "1", "--device", "cpu"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint.pt", "metrics.csv", "train.log"}
    assert load_checkpoint(run / CHECKPOINT_FILE)["world_size"] == WORLD


# ---------------------------------------------------------------- one process


def test_helpers_are_the_identity_in_one_process():
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    assert distributed.all_gather_object({"a": 1}) == [{"a": 1}]
    assert distributed.broadcast_object(7) == 7
    assert distributed.run_on_main(lambda: "x") == "x"
    t = torch.ones(3)
    assert torch.equal(distributed.all_reduce_sum(t), torch.ones(3))


def test_gradient_buckets_keep_order_size_and_dtype():
    tensors = [torch.zeros(5), torch.zeros(4), torch.zeros(9), torch.zeros(2, dtype=torch.float64), torch.zeros(1)]
    buckets = distributed._buckets(tensors, bucket_elements=9)
    assert [[t.numel() for t in b] for b in buckets] == [[5, 4], [9], [2], [1]]
    assert [t for b in buckets for t in b] == tensors


def test_global_batch_must_split_over_processes_and_micro_batches():
    check_batch_split(_config(batch_size=64, micro_batches=2), world=4)
    with pytest.raises(MixPathError, match=r"batch_size=96 .* over 5 process\(es\) x 1 .*multiple of 5"):
        check_batch_split(_config(batch_size=96), world=5)
    with pytest.raises(MixPathError, match="micro_batches=5"):
        _config(batch_size=96, micro_batches=5)


def test_amp_modes():
    assert autocast_dtype("off", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(MixPathError, match="amp='fp16' needs a CUDA device"):
        autocast_dtype("fp16", torch.device("cpu"))
    with pytest.raises(MixPathError, match="unknown amp mode 'fp8'"):
        _config(amp="fp8")


def test_bf16_autocast_trains_on_the_cpu(tmp_path):
    data = _digits(augment=False)
    result = train_supernet(_config(epochs=1, amp="bf16", lr=0.1), tmp_path / "bf16", dataset=data, progress=False)
    full = train_supernet(_config(epochs=1, lr=0.1), tmp_path / "fp32", dataset=data, progress=False)
    assert abs(result.last["train_loss"] - full.last["train_loss"]) < 0.05  # bf16 rounding, same training
    assert result.last["train_loss"] != full.last["train_loss"]  # autocast really ran in bf16
