"""One-shot methods side by side at equal supernet wall-clock (issue 19): which search finds the best network?

Carries out ``experiments/protocols/methods-fmnist-s1-2026-12-03.toml`` (fixed before any run); every choice is
the protocol's. Stages, each resumable (run it again after a kill and it continues; with everything done it only
rewrites its outputs):

    python experiments/compare_methods.py latency          # the space's latency table (moga's and fbnet's)
    python experiments/compare_methods.py timing           # one epoch per method -> each method's epochs
    python experiments/compare_methods.py train            # every method's supernet
    python experiments/compare_methods.py search           # every method's search
    python experiments/compare_methods.py retrain --worker 0/2 &   # each pick retrained with every seed,
    python experiments/compare_methods.py retrain --worker 1/2     # two 1-thread processes
    python experiments/compare_methods.py shrink-ranking   # what BS-NAS's shrinking does to the ranking
    python experiments/compare_methods.py table            # methods.csv / .md / .png from whatever exists
    python experiments/compare_methods.py all              # all of the above in order

Committed outputs go to experiments/results/<protocol name>/, run folders (checkpoints) to
experiments/runs/<protocol name>/ (not in git).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import ranking  # experiments/ranking.py: the ranking study's ground-truth reader and machine record
import tomllib
import torch
from matplotlib.figure import Figure

from mixpath.data import Data, load_data
from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings, build_latency_table
from mixpath.io import read_json, write_csv, write_json, write_text
from mixpath.ranking.metrics import batched_kendall_tau, estimate, kendall_tau, tau_difference
from mixpath.ranking.scoring import supernet_scores
from mixpath.retraining import retrain_architecture
from mixpath.search import EvaluatedArch, SearchConfig, SearchResult, parse_objectives, parse_weights
from mixpath.search.result import RESULTS_FILE
from mixpath.search.session import STATE_FILE
from mixpath.spaces import SearchSpace, get_space
from mixpath.training import Recipe, TrainConfig, train_supernet
from mixpath.training.heldout import split_held_out
from mixpath.training.shrinking import run_search_space
from mixpath.training.trainer import CONFIG_FILE, METRICS_FILE, saved_config
from mixpath.workflow import LATENCY_FILE, choose_under_budget, search_folder, search_supernet

ROOT = Path(__file__).resolve().parent
DEFAULT_PROTOCOL = ROOT / "protocols" / "methods-fmnist-s1-2026-12-03.toml"
YARDSTICK = "mixpath"  # [budget]: MixPath's default recipe sets every method's wall-clock
SHRINK_PAIR = ("spos", "bsnas")  # [shrink_ranking]: the supernets without and with shrinking
SHRINK_CALIBRATION = CalibrationSettings("exact", size=2048)  # [shrink_ranking]: exact, 2,048 images
BOOTSTRAP_SEED = 0  # the ranking study's bootstrap seed
STRATEGY_RECORDS = ("fbnet.json", "shrunk.json")
"""What a strategy writes beside its checkpoint about what it learned, copied to results/<protocol>/supernets/."""
RETRAIN_WORKERS = 2  # [retrain]: two 1-thread processes
TO_FILL = "TO FILL"
REQUIRED = {
    "data": ("dataset", "val_size", "split_seed"),
    "space": ("name", "seed"),
    "budget": ("timing_images", "threads"),
    "search": ("budget", "population", "max_flops", "calibrate"),
    "latency_table": ("file",),
    "retrain": ("epochs", "lr", "batch_size", "seeds"),
    "shrink_ranking": ("ground_truth_protocol", "bootstrap"),
}

log = logging.getLogger("compare_methods")


def check_protocol(p: dict[str, Any], path: Path) -> None:
    """Every key the stages read, checked at the start, so that a protocol missing one fails in one line
    before anything trains rather than hours later."""
    missing = [f"[{part}] {key}" for part, keys in REQUIRED.items() for key in keys if key not in p.get(part, {})]
    methods = p.get("methods", {})
    if YARDSTICK not in methods:
        missing.append(f"[methods.{YARDSTICK}] (the budget's yardstick)")
    for name, spec in methods.items():
        missing += [f"[methods.{name}] {key}" for key in ("train", "search") if key not in spec]
        missing += [
            f"[methods.{name}] search.{key}" for key in ("algo", "objectives") if key not in spec.get("search", {})
        ]
    if missing:
        raise SystemExit(f"{path} lacks {', '.join(missing)}")
    if p["data"]["split_seed"] != p["space"]["seed"]:  # a run's validation split is seeded by its training seed
        raise SystemExit(f"{path}: [data] split_seed must equal [space] seed")


def paths_per_layer(train: dict[str, Any]) -> int:
    """m as ``mixpath train`` sets it: as given, else TrainConfig's for mixpath and 1 for single-path strategies."""
    return train.get("m", TrainConfig.m if train.get("strategy", TrainConfig.strategy) == "mixpath" else 1)


def trained_images(config: TrainConfig, data: Data) -> int:
    """Images one epoch trains weights on: fbnet and shrinking hold their held-out share out of the training
    split (``split_held_out``, as the trainer does), and a last partial batch is dropped."""
    train = data.train
    if config.strategy == "fbnet" or config.shrink_at:
        train, _ = split_held_out(train, config.held_out, config.seed)
    return train.steps_per_epoch(config.batch_size) * config.batch_size


def method_epochs(yardstick_seconds: float, seconds_per_image: float, training_images: int) -> int:
    """[budget]'s formula: the epochs that take a method as long as the yardstick's run, at least one."""
    return max(1, round(yardstick_seconds / (seconds_per_image * training_images)))


def epoch_seconds(run_dir: Path) -> list[float]:
    """Training seconds of each finished epoch of a run (its metrics.csv; none before the first)."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [float(row["seconds"]) for row in csv.DictReader(handle)]


def finished_run(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` trained all its epochs (so its checkpoint is the final supernet)."""
    return (run_dir / CONFIG_FILE).is_file() and len(epoch_seconds(run_dir)) >= saved_config(run_dir).epochs


class Comparison:
    """One protocol: its settings, where its outputs go, its data, and each method's settings."""

    def __init__(self, protocol_path: Path, root: Path = ROOT) -> None:
        try:
            self.p: dict[str, Any] = tomllib.loads(protocol_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise SystemExit(f"cannot read the protocol {protocol_path}: {err}") from None
        check_protocol(self.p, protocol_path)
        self.protocol_path, self.root, self.name = protocol_path, root, protocol_path.stem
        self.results = root / "results" / self.name
        self.runs = root / "runs" / self.name
        self.space: SearchSpace = get_space(self.p["space"]["name"])
        self.methods: dict[str, dict[str, Any]] = self.p["methods"]
        self.latency_path = self.results / self.p["latency_table"]["file"]
        self.timing_path = self.results / "timing.json"
        self._data: dict[int | None, Data] = {}

    def data(self, subset: int | None = None) -> Data:
        """The protocol's split: all its training images, or the first ``subset`` of their seeded order."""
        if subset not in self._data:
            d = self.p["data"]
            self._data[subset] = load_data(
                d["dataset"], val_size=d["val_size"], split_seed=d["split_seed"], train_subset=subset
            )
        return self._data[subset]

    def threads(self) -> None:
        torch.set_num_threads(self.p["budget"]["threads"])

    def objectives(self, method: str) -> tuple[str, ...]:
        return parse_objectives(self.methods[method]["search"]["objectives"])

    def uses_latency(self, method: str) -> bool:
        return "latency_table" in self.methods[method]["train"] or "latency" in self.objectives(method)

    def train_config(self, method: str, epochs: int, train_subset: int | None = None) -> TrainConfig:
        """The method's supernet: the protocol's data, split and seed, its ``train`` settings (a latency table
        is the one the latency stage measured), TrainConfig's defaults otherwise (the project's recipe)."""
        fields = {**self.methods[method]["train"], "m": paths_per_layer(self.methods[method]["train"])}
        if "latency_table" in fields:
            table = self.results / fields["latency_table"]
            if not table.is_file():
                raise SystemExit(f"{method} needs the latency table {table}: run the latency stage first")
            fields["latency_table"] = str(table)
        d = self.p["data"]
        try:
            return TrainConfig(
                space=self.space.name,
                data=d["dataset"],
                val_size=d["val_size"],
                seed=self.p["space"]["seed"],
                epochs=epochs,
                train_subset=train_subset,
                **fields,
            )
        except TypeError as err:
            raise SystemExit(f"{self.protocol_path}: [methods.{method}] train: {err}") from None

    def search_config(self, method: str) -> SearchConfig:
        """[search]'s settings under its FLOPs budget, with the method's objectives, weights and maximised costs."""
        spec, s = self.methods[method]["search"], self.p["search"]
        return SearchConfig(
            objectives=self.objectives(method),
            constraints={"flops": s["max_flops"]},
            budget=s["budget"],
            population=s["population"],
            seed=self.p["space"]["seed"],
            weights=parse_weights(spec.get("weights", "")),
            maximise=parse_objectives(spec["maximise"]) if "maximise" in spec else (),
        )

    def epochs(self) -> dict[str, int]:
        """Each method's supernet epochs, as the timing stage set them ({} before it has)."""
        return read_json(self.timing_path).get("epochs", {}) if self.timing_path.is_file() else {}

    def run_dir(self, method: str) -> Path:
        return self.runs / method

    def search_dir(self, method: str) -> Path:
        return search_folder(self.run_dir(method), self.methods[method]["search"]["algo"])

    def search_record(self, method: str) -> Path:
        return self.results / "searches" / f"{method}.json"

    def retrained_path(self, method: str, seed: int) -> Path:
        return self.results / "retrained" / f"{method}-seed{seed}.json"

    def pick(self, method: str) -> EvaluatedArch | None:
        """The most accurate architecture of the method's finished search front within max_flops (None before):
        as the committed search record holds it, so that a checkout without the run folders retrains it."""
        record = read_json(self.search_record(method)) if self.search_record(method).is_file() else {}
        if record.get("pick"):
            return EvaluatedArch.from_json(record["pick"], self.space, paths_per_layer(self.methods[method]["train"]))
        folder = self.search_dir(method)
        if not (folder / RESULTS_FILE).is_file():
            return None
        return choose_under_budget(SearchResult.load(folder, self.space).front, self.p["search"]["max_flops"])


def stage_latency(c: Comparison) -> None:
    """Measure the space's latency table once, at the largest m of the methods that use it."""
    users = [method for method in c.methods if c.uses_latency(method)]
    if c.latency_path.exists() or not users:
        log.info("latency table: %s", "already measured" if users else "no method uses one")
        return
    m = max(paths_per_layer(c.methods[method]["train"]) for method in users)
    c.threads()
    log.info("measuring the latency table of %s at m=%d, batch 1 (for %s)", c.space.name, m, ", ".join(users))
    build_latency_table(c.space, m, device="cpu", progress=True).save(c.latency_path)


def stage_timing(c: Comparison) -> dict[str, Any]:
    """Time one epoch of every method not yet timed, then set every method's epochs by [budget]'s formula."""
    c.threads()
    timing: dict[str, Any] = read_json(c.timing_path) if c.timing_path.exists() else {"methods": {}}
    for method in c.methods:
        if method not in timing["methods"]:
            timing["methods"][method] = time_one_epoch(c, method)
            write_json(c.timing_path, timing)  # a kill loses one method's timing at most
    full = {method: trained_images(c.train_config(method, 1), c.data()) for method in c.methods}
    per_image = {method: timing["methods"][method]["seconds_per_image"] for method in c.methods}
    default_epochs = c.p["budget"].get("yardstick_epochs", TrainConfig().epochs)  # set only by tests' tiny protocols
    yardstick = default_epochs * per_image[YARDSTICK] * full[YARDSTICK]
    timing["yardstick"] = {
        "method": YARDSTICK,
        "default_epochs": default_epochs,
        "epoch_seconds": round(per_image[YARDSTICK] * full[YARDSTICK], 2),
        "seconds": round(yardstick, 1),
    }
    timing["training_images"] = full
    timing["epochs"] = {method: method_epochs(yardstick, per_image[method], full[method]) for method in c.methods}
    write_json(c.timing_path, timing)
    log.info("epochs at equal wall-clock (%.0f s): %s", yardstick, timing["epochs"])
    return timing


def time_one_epoch(c: Comparison, method: str) -> dict[str, Any]:
    """One epoch of the method as configured, on the protocol's first timing_images images, in a throw-away
    folder, without shrink points (the protocol's amendment: they are a fixed cost of the run, which a one-epoch
    run would charge to one epoch); held-out shares are still held out."""
    config = dataclasses.replace(c.train_config(method, 1, c.p["budget"]["timing_images"]), shrink_at=())
    data = c.data(config.train_subset)
    log.info("timing one epoch of %s on %d images", method, config.train_subset)
    before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        train_supernet(config, Path(tmp) / "run", dataset=data, progress=True)
        (seconds,) = epoch_seconds(Path(tmp) / "run")
    images = trained_images(config, data)
    return {
        "seconds": seconds,
        "images": images,
        "seconds_per_image": seconds / images,
        "load_average_before": [round(v, 2) for v in before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        **ranking.machine(),
    }


def stage_train(c: Comparison) -> None:
    """Train every method's supernet for its epochs; a partial run resumes where it stopped."""
    epochs = c.epochs()
    if not epochs:
        raise SystemExit(f"no epochs in {c.timing_path}: run the timing stage first")
    c.threads()
    for method in c.methods:
        config, run_dir = c.train_config(method, epochs[method]), c.run_dir(method)
        if finished_run(run_dir) and saved_config(run_dir) == config:
            log.info("%s: trained (%d epochs)", method, config.epochs)
        else:
            log.info("%s: training %d epochs in %s", method, config.epochs, run_dir)
            train_supernet(config, run_dir, resume=(run_dir / CONFIG_FILE).exists(), dataset=c.data(), progress=True)
        for name in STRATEGY_RECORDS:  # fbnet's architecture distribution, BS-NAS's survivors: committed
            if (run_dir / name).is_file():
                write_text(c.results / "supernets" / f"{method}-{name}", (run_dir / name).read_text())


def stage_search(c: Comparison) -> None:
    """Search every trained supernet; a killed search resumes, a finished one is left alone."""
    c.threads()
    calibration = CalibrationSettings(c.p["search"]["calibrate"])
    for method in c.methods:
        run_dir, out = c.run_dir(method), c.search_dir(method)
        if not finished_run(run_dir):
            log.info("%s: not trained yet, no search", method)
            continue
        if (out / RESULTS_FILE).exists():
            log.info("%s: searched", method)
            continue
        if "latency" in c.objectives(method) and not (run_dir / LATENCY_FILE).exists():
            shutil.copy2(c.latency_path, run_dir / LATENCY_FILE)  # the search's table is the protocol's
        log.info("%s: searching with %s", method, c.methods[method]["search"]["algo"])
        resumed, started = (out / STATE_FILE).exists(), time.perf_counter()
        result, _ = search_supernet(
            run_dir, c.methods[method]["search"]["algo"], c.search_config(method), calibration=calibration, resume=True
        )
        pick = choose_under_budget(result.front, c.p["search"]["max_flops"])
        write_json(
            c.search_record(method),
            {
                "seconds": round(time.perf_counter() - started, 1),
                "resumed": resumed,
                "evaluated": len(result.evaluated),
                "front": len(result.front),
                "supernet_seconds": round(sum(epoch_seconds(run_dir)), 1),
                "pick": pick.to_json(c.space) if pick else None,
            },
        )


def stage_retrain(c: Comparison, worker: int, workers: int) -> None:
    """Retrain this worker's share of the (method, seed) jobs; a finished one is read back, not trained."""
    torch.set_num_threads(1)  # [retrain]: 1-thread processes (the thread count changes the trained weights)
    r = c.p["retrain"]
    recipe = Recipe(epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"])
    jobs = [(method, seed) for method in c.methods for seed in r["seeds"]]
    for method, seed in jobs[worker::workers]:
        pick = c.pick(method)
        if pick is None:
            log.info("%s: not searched yet, nothing to retrain", method)
            continue
        log.info("%s seed %d: %s (retrained, or read back when finished)", method, seed, c.space.format(pick.arch))
        labels = {"role": method, "supernet_score": round(pick.metrics["accuracy"], 3)}
        folder = c.runs / "retrain" / method / f"seed{seed}"
        result = retrain_architecture(
            c.space, c.data(), pick.arch, recipe, folder, seed=seed, progress=sys.stderr.isatty(), labels=labels
        )
        write_json(c.retrained_path(method, seed), result)


def retrain_workers(c: Comparison, args: argparse.Namespace) -> None:
    """The retrain stage as RETRAIN_WORKERS 1-thread processes, each pinned to a core when taskset exists."""
    command = [sys.executable, str(Path(__file__).resolve()), "retrain", "--protocol", str(args.protocol)]
    command += ["--root", str(args.root)]
    cores, taskset = sorted(os.sched_getaffinity(0)), shutil.which("taskset")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = []
    for w in range(RETRAIN_WORKERS):
        pin = [taskset, "-c", str(cores[w % len(cores)])] if taskset else []
        workers.append(subprocess.Popen([*pin, *command, "--worker", f"{w}/{RETRAIN_WORKERS}"], env=env))
    if any([worker.wait() != 0 for worker in workers]):  # a list: wait for every worker
        raise SystemExit("a retraining worker failed; see its log above")


def stage_shrink_ranking(c: Comparison) -> dict[str, Any]:
    """Kendall tau of the spos and bsnas supernets against the ranking study's single-path ground truth
    (seed-mean test accuracy), with bootstrap intervals and the paired interval of their difference."""
    s = c.p["shrink_ranking"]
    protocol = c.root / "results" / s["ground_truth_protocol"] / "protocol.toml"
    if not protocol.is_file():
        raise SystemExit(f"no ranking study at {protocol.parent}: [shrink_ranking] names its results folder")
    epochs, rows, _ = ranking.ground_truth(ranking.Study(protocol, c.root))
    truth = {arch: row.test_acc for arch, row in rows.items() if ranking.single_path(arch)}
    if len(truth) < 3:
        raise SystemExit(f"only {len(truth)} single-path ground-truth archs have every seed; nothing to rank")
    c.threads()
    out: dict[str, Any] = {"ground_truth": {"protocol": protocol.parent.name, "epochs": epochs, "archs": len(truth)}}
    scores = {}
    for method in (m for m in SHRINK_PAIR if m in c.methods and finished_run(c.run_dir(m))):
        log.info("%s: scoring %d ground-truth archs", method, len(truth))
        scores[method] = supernet_scores(c.run_dir(method), sorted(truth), calibration=SHRINK_CALIBRATION)
        archs = sorted(scores[method])
        x, y = [scores[method][a] for a in archs], [truth[a] for a in archs]
        out[method] = {
            "kendall_tau": estimate(x, y, kendall_tau, batched_kendall_tau, s["bootstrap"], BOOTSTRAP_SEED).to_json(),
            "archs": len(archs),
            "uses_dropped_ops": dropped_ops(run_search_space(c.run_dir(method), c.space), c.space, archs),
            "scores": scores[method],
        }
    if len(scores) == 2:
        without, shrunk = SHRINK_PAIR
        archs = sorted(set(scores[without]) & set(scores[shrunk]))
        a, b, y = ([values[arch] for arch in archs] for values in (scores[shrunk], scores[without], truth))
        paired = tau_difference(a, b, y, resamples=s["bootstrap"], seed=BOOTSTRAP_SEED)
        out[f"tau({shrunk}) - tau({without})"] = paired.to_json()
    write_json(c.results / "shrink_ranking.json", out)
    return out


def dropped_ops(shrunk: SearchSpace, space: SearchSpace, archs: list[str]) -> dict[str, list[str]]:
    """Per architecture, the ops (layer:op) it uses that shrinking turned off: the supernet still holds their
    weights and scores them, but its own search never saw them."""
    used = {}
    for text in archs:
        layers = zip(space.parse(text, space.max_m()).layers, shrunk.layers, strict=True)
        gone = [f"{i}:{op}" for i, (choice, spec) in enumerate(layers) for op in choice.paths if op not in spec.ops]
        if gone:
            used[text] = gone
    return used


def stage_table(c: Comparison) -> list[dict[str, Any]]:
    """methods.csv, methods.md and methods.png from whatever exists; cells not measured yet say TO FILL."""
    seeds = c.p["retrain"]["seeds"]
    rows = [method_row(c, method, c.epochs().get(method), seeds) for method in c.methods]
    write_csv(c.results / "methods.csv", rows)
    lines = [f"# {c.name}: one-shot methods side by side", "", "Protocol: [protocol.toml](protocol.toml).", ""]
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(value) for value in row.values()) + " |" for row in rows]
    write_text(c.results / "methods.md", "\n".join(lines) + "\n")
    plot_accuracy(rows, seeds, c.results / "methods.png")
    return rows


def method_row(c: Comparison, method: str, epochs: int | None, seeds: list[int]) -> dict[str, Any]:
    run_dir, pick = c.run_dir(method), c.pick(method)
    search = read_json(c.search_record(method)) if c.search_record(method).is_file() else {}
    accuracy = {
        s: read_json(c.retrained_path(method, s))["test_acc"] for s in seeds if c.retrained_path(method, s).is_file()
    }
    row = {
        "method": method,
        "supernet_epochs": epochs,
        "supernet_seconds": (
            round(sum(epoch_seconds(run_dir)), 1) if finished_run(run_dir) else search.get("supernet_seconds")
        ),
        "search_seconds": search.get("seconds"),
        "arch": c.space.format(pick.arch) if pick else None,
        "flops": round(pick.metrics["flops"], 3) if pick else None,
        "params": round(pick.metrics["params"], 4) if pick else None,
        "supernet_score": round(pick.metrics["accuracy"], 2) if pick else None,
        **{f"test_acc_seed{s}": accuracy.get(s) for s in seeds},
        "test_acc_mean": round(statistics.mean(accuracy.values()), 2) if len(accuracy) == len(seeds) else None,
    }
    return {key: TO_FILL if value is None else value for key, value in row.items()}


def plot_accuracy(rows: list[dict[str, Any]], seeds: list[int], path: Path) -> None:
    """Mean retrained test accuracy per method (bars), each seed's as a point; the axis is zoomed to the
    data, because at ~90 % the methods differ by tenths of a point."""
    done = [row for row in rows if row["test_acc_mean"] != TO_FILL]
    if not done:
        return
    fig = Figure(figsize=(1.2 * len(done) + 2.5, 4), dpi=120)
    ax = fig.add_subplot()
    xs = list(range(len(done)))
    ax.bar(xs, [row["test_acc_mean"] for row in done], color="0.8", label="mean of the seeds")
    for seed in seeds:
        ax.scatter(xs, [row[f"test_acc_seed{seed}"] for row in done], zorder=3, label=f"seed {seed}")
    lowest = min(row[f"test_acc_seed{seed}"] for row in done for seed in seeds)
    ax.set_ylim(bottom=max(0.0, lowest - 1.0))
    ax.set_xticks(xs, [row["method"] for row in done])
    ax.set_ylabel(f"retrained test accuracy (%, axis from {max(0.0, lowest - 1.0):.1f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def stage_all(c: Comparison, args: argparse.Namespace) -> None:
    """Every stage in order, each resumable: run it again after a kill and it continues."""
    stage_latency(c)
    stage_timing(c)
    stage_train(c)
    stage_search(c)
    retrain_workers(c, args)
    stage_shrink_ranking(c)
    stage_table(c)


STAGES = {
    "latency": lambda c, args: stage_latency(c),
    "timing": lambda c, args: stage_timing(c),
    "train": lambda c, args: stage_train(c),
    "search": lambda c, args: stage_search(c),
    "retrain": lambda c, args: stage_retrain(c, *args.worker),
    "shrink-ranking": lambda c, args: stage_shrink_ranking(c),
    "table": lambda c, args: stage_table(c),
    "all": stage_all,
}


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line (the usage is in --help), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def worker_spec(text: str) -> tuple[int, int]:
    """``i/n``: worker i of n, 0 <= i < n."""
    try:
        worker, workers = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not i/n, e.g. 0/2") from None
    if not 0 <= worker < workers:
        raise argparse.ArgumentTypeError(f"{text!r}: worker i of n must have 0 <= i < n")
    return worker, workers


def main(argv: list[str]) -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL, help="the protocol file to carry out")
    parser.add_argument("--root", type=Path, default=ROOT, help="where results/ and runs/ go")
    parser.add_argument("--worker", type=worker_spec, default=(0, 1), help="retrain: this worker's share, i/n")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        comparison = Comparison(args.protocol, args.root)
        write_text(comparison.results / "protocol.toml", args.protocol.read_text())
        STAGES[args.stage](comparison, args)
    except MixPathError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
