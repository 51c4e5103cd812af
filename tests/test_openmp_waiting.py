"""OpenMP waiting follows the load while a process runs, for Python programs as for the command.

GNU OpenMP's threads spin for milliseconds before they sleep; on cores that other processes use, that
spinning takes the core from the thread everyone waits for (training from Python ran at 25.6 img/s against
221 from the command at load 6). A library cannot set ``OMP_WAIT_POLICY`` once torch is imported, so
mixpath holds an idle OpenMP team while other processes share the cores, which makes libgomp's waiting
threads sleep almost at once, and lets it go when they leave (``mixpath.kernels.runtime``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from mixpath.data import load_dataset
from mixpath.kernels import runtime
from mixpath.kernels.runtime import CpuTimes, LoadFollower, others_load, shares_cores, team_size, waiting_follows_load
from mixpath.spaces import get_space
from mixpath.supernet import build_standalone
from mixpath.training import TrainConfig, train_supernet
from mixpath.training.recipe import Recipe
from mixpath.training.standalone import train_standalone

TEAM_THREAD = "mixpath-openmp-team"

REGIONS = """
import os, sys, threading, time
import torch  # loads GNU OpenMP
from mixpath.kernels.runtime import OversubscribedTeam, loaded_libgomp, team_size, usable_cores

gomp = loaded_libgomp()
noop = __import__("ctypes").cast(__import__("ctypes").CDLL(None).free, __import__("ctypes").c_void_p)
main = threading.get_native_id()

def sleeps():
    total = 0
    for task in os.listdir("/proc/self/task"):
        if int(task) != main:
            try:
                with open(f"/proc/self/task/{task}/status") as status:
                    total += sum(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))
            except FileNotFoundError:  # a thread that ended since the listing (the released team's)
                pass
    return total

def regions(n=200):
    before = sleeps()
    for _ in range(n):
        gomp.GOMP_parallel(noop, None, 2, 0)
        start = time.perf_counter()
        while time.perf_counter() - start < 0.0002:  # the gap between two parallel regions of a step
            pass
    return sleeps() - before

alone = regions()
threads = len(os.listdir("/proc/self/task"))
team = OversubscribedTeam(gomp, team_size(usable_cores(), 2))
time.sleep(0.05)
held = regions()
team.release()
deadline = time.monotonic() + 5
while len(os.listdir("/proc/self/task")) > threads and time.monotonic() < deadline:
    time.sleep(0.01)  # the team's pool threads end after the release returns; until then libgomp still throttles
print(alone, held, regions())
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or runtime.usable_cores() < 2, reason="GNU OpenMP, 2 cores")
def test_an_idle_team_makes_waiting_openmp_threads_sleep():
    # GOMP_SPINCOUNT=infinite: without the team a waiting thread never sleeps, whatever the machine's load
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_THREAD_LIMIT")}
    env |= {"GOMP_SPINCOUNT": "infinite", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", REGIONS], env=env, capture_output=True, text=True, check=True)
    alone, held, released = map(int, out.stdout.split())
    assert alone < 20 and released < 20  # spinning through every gap: no sleep
    assert held >= 100  # the computing team's worker sleeps after (nearly) each of the 200 regions


def test_others_load_is_the_machine_less_this_process():
    before = CpuTimes(wall=10.0, machine=100.0, process=5.0)
    after = CpuTimes(wall=12.0, machine=105.0, process=8.0)  # 5 core-seconds in 2 s, 3 of them ours
    assert others_load(before, after) == pytest.approx(1.0)
    assert others_load(after, after) == 0.0


def test_cores_are_shared_when_others_leave_no_core_per_thread():
    assert not shares_cores(0.3, cores=2, threads=2)
    assert shares_cores(1.0, cores=2, threads=2)  # one other CPU-bound process on 2 cores
    assert not shares_cores(1.0, cores=8, threads=2)
    assert team_size(2, 2) == 2 and team_size(8, 2) == 8  # 2 + (8 - 1) threads > 8 cores
    assert team_size(2, 1) == 0 and team_size(2, 3) == 0  # one thread never waits; 3 are more than 2 already


class FakeTeam:
    def __init__(self, size: int) -> None:
        self.size, self.released = size, False

    def release(self) -> None:
        self.released = True


def test_the_follower_holds_a_team_only_while_others_share_the_cores():
    follower = LoadFollower(threads=2, hold=FakeTeam, cores=2)
    follower.follow(0.1)
    assert follower.team is None
    follower.follow(1.2)  # another job started
    team = follower.team
    assert team is not None and team.size == 2
    follower.follow(1.0)
    assert follower.team is team  # still busy: the same team
    follower.follow(0.2)  # it ended
    assert follower.team is None and team.released
    single = LoadFollower(threads=1, hold=FakeTeam, cores=2)
    single.follow(6.0)
    assert single.team is None


def busy_machine(others: float):
    """``cpu_times`` of a machine where other processes keep ``others`` cores busy."""
    start = time.monotonic()

    def times() -> CpuTimes:
        now = time.monotonic()
        return CpuTimes(now, (now - start) * others, 0.0)

    return times


def test_the_follower_looks_at_the_load_while_it_runs():
    follower = LoadFollower(threads=2, hold=FakeTeam, cores=2, period=0.01, times=busy_machine(1.5)).start()
    try:
        deadline = time.monotonic() + 5
        while follower.team is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert follower.team is not None and follower.load == pytest.approx(1.5, rel=0.1)
        team = follower.team
    finally:
        follower.stop()
    assert team.released and follower.team is None


def test_the_command_starts_with_the_short_spin_where_the_follower_works(monkeypatch):
    monkeypatch.setattr(runtime, "busy_cores", lambda seconds=0.1: 2.0)  # busy at start ...
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    assert runtime.openmp_wait_at_start({}) == {"GOMP_SPINCOUNT": runtime.SPIN_COUNT}  # ... not fixed for the run
    monkeypatch.setattr(runtime.sys, "platform", "darwin")  # no GNU OpenMP to follow the load with
    assert runtime.openmp_wait_at_start({}) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_a_python_program_can_start_with_the_commands_runtime():
    # README: env $(python3 -m mixpath.kernels.runtime) python3 my_script.py
    chosen = ("LD_PRELOAD", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", runtime.SWITCH)
    env = {key: value for key, value in os.environ.items() if key not in chosen}
    command = [sys.executable, "-m", "mixpath.kernels.runtime"]
    printed = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert f"{runtime.SWITCH}=1" in printed
    assert set(printed) >= {f"{k}={v}" for k, v in runtime.openmp_wait_at_start(env).items()}
    library = runtime.find_allocator()
    assert (f"LD_PRELOAD={library}" in printed) == (library is not None)


def test_the_users_choice_turns_the_follower_off():
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_THREAD_LIMIT": "2"}, {runtime.SWITCH: "0"}):
        with waiting_follows_load(chosen) as follower:
            assert follower is None
    assert runtime.follows_load({runtime.SWITCH: "1", "GOMP_SPINCOUNT": "3000"})  # the command's own setting


def team_threads() -> int:
    return sum(thread.name == TEAM_THREAD for thread in threading.enumerate())


@pytest.fixture
def busy_two_threads(monkeypatch):
    """Training on 2 threads while another process keeps a core of 2 busy (simulated), looking every 10 ms;
    records whether an idle OpenMP team was held while it ran."""
    monkeypatch.setattr(runtime, "cpu_times", busy_machine(1.0))
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime, "FIRST_CHECK", 0.0)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    monkeypatch.delenv(runtime.SWITCH, raising=False)
    seen = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):
            seen.append(team_threads())

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    watcher = threading.Thread(target=watch)
    watcher.start()
    yield seen
    stop.set()
    watcher.join()
    torch.set_num_threads(threads)


@pytest.mark.skipif(runtime.loaded_libgomp() is None, reason="torch without GNU OpenMP")
def test_training_from_python_follows_the_load(busy_two_threads, tmp_path):
    config = TrainConfig(space="tiny", data="digits", epochs=2, batch_size=32, train_subset=256)
    train_supernet(config, tmp_path / "run", progress=False)
    assert max(busy_two_threads) == 1  # the team was held during training ...
    assert team_threads() == 0  # ... and let go after it


@pytest.mark.skipif(runtime.loaded_libgomp() is None, reason="torch without GNU OpenMP")
def test_retraining_from_python_follows_the_load(busy_two_threads):
    space = get_space("tiny")
    model = build_standalone(space, space.random_architecture(__import__("random").Random(0), 1))
    dataset = load_dataset("digits", train_subset=256)
    train_standalone(model, dataset, Recipe(epochs=2, batch_size=32), progress=False)
    assert max(busy_two_threads) == 1
    assert team_threads() == 0
