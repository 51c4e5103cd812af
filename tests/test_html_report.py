"""``report.html``: one self-contained, escaped page for any run folder, from a bare one to a full pipeline run."""

from __future__ import annotations

import base64
import csv
import os
import random
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from mixpath.errors import MixPathError
from mixpath.export import export_model
from mixpath.io import write_json, write_text
from mixpath.ranking import GroundTruthRow
from mixpath.ranking.rank import rank_scores
from mixpath.reporting import write_html_report
from mixpath.search import SearchConfig, SearchResult
from mixpath.search.result import EvaluatedArch
from mixpath.spaces import get_space
from mixpath.supernet import build_standalone
from mixpath.training import TrainConfig

EPOCHS = [
    {"epoch": 1, "train_loss": 1.9, "train_acc": 30.5, "val_acc_sampled": 33.25, "lr": 0.02, "seconds": 61.2},
    {"epoch": 2, "train_loss": 1.4, "train_acc": 48.0, "val_acc_sampled": 51.5, "lr": 0.0125, "seconds": 60.1},
    {"epoch": 3, "train_loss": 1.1, "train_acc": 60.75, "val_acc_sampled": 58.0, "lr": 0.0, "seconds": 59.9},
]


class _Page(HTMLParser):
    """What a browser would see: image sources, link targets, every attribute, the text of each table row."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.attributes: list[str] = []
        self.tags: set[str] = set()
        self.tables: list[list[list[str]]] = []
        self.named: list[bool] = []  # per table: a table of named values, not one with a header row
        self.text: list[str] = []
        self._cells: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        values = dict(attrs)
        self.attributes.extend(value or "" for value in values.values())
        if tag == "img":
            self.images.append(values["src"])
        elif tag == "a":
            self.links.append(values["href"])
        elif tag == "table":
            self.tables.append([])
            self.named.append(values.get("class") == "facts")
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cells = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cells is not None:
            self.tables[-1][-1].append("".join(self._cells).strip())
            self._cells = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cells is not None:
            self._cells.append(data)

    @property
    def rows(self) -> list[list[str]]:
        return [row for rows in self.tables for row in rows]

    def row(self, first: str) -> list[str]:
        """The first table row whose first cell is ``first``."""
        matches = [row for row in self.rows if row and row[0] == first]
        assert matches, f"no table row starting with {first!r}"
        return matches[0]

    def fact(self, name: str) -> str:
        """The value next to ``name`` in a table of named values."""
        rows = [row for rows, named in zip(self.tables, self.named, strict=True) if named for row in rows]
        values = [row[i + 1] for row in rows for i in range(0, len(row), 2) if row[i] == name]
        assert len(values) == 1, f"{len(values)} values named {name!r}"
        return values[0]

    def table(self, *headers: str) -> list[list[str]]:
        """The rows below the header of the table whose header starts with ``headers``."""
        matches = [rows[1:] for rows in self.tables if tuple(rows[0][: len(headers)]) == headers]
        assert len(matches) == 1, f"{len(matches)} tables with headers {headers}"
        return matches[0]


def _bare_run(root: Path) -> Path:
    write_json(root / "config.json", TrainConfig(space="tiny", data="digits", epochs=3, m=4).to_json())
    with (root / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*EPOCHS[0], "images_per_s"])
        writer.writeheader()
        writer.writerows({**row, "images_per_s": 880.0} for row in EPOCHS)
    return root


def _full_run(root: Path) -> Path:
    """A run folder as the whole pipeline leaves it, with results in the formats mixpath writes them."""
    _bare_run(root)
    write_text(root / "train.log", "epoch 1: ...\n")
    space, rng = get_space("tiny"), random.Random(0)
    evaluated = [
        EvaluatedArch(
            space.random_architecture(rng, 4),
            {
                "accuracy": 40.0 + 2 * i - 3 * (i % 3 == 0),
                "flops": 1.0 + 0.5 * i,
                "params": 0.01 * i,
                "cost_seconds": 0.5,
            },
            True,
            1 + i // 6,
        )
        for i in range(12)
    ]
    history = [
        {
            "generation": g,
            "evaluated": 6 * g,
            "rejected": 0,
            "front_size": 3,
            "hypervolume": 20.0 + g,
            "cost_seconds": 3.0 * g,
            "score_seconds": 40.0 * g,
        }
        for g in (1, 2)
    ]
    config = SearchConfig(budget=12, population=6)
    result = SearchResult("nsga2", space, 4, config, evaluated, history, {"accuracy": 0.0, "flops": 10.0})
    search = root / "search-nsga2"
    result.save(search)
    result.plot(search / "front.png")
    best = result.front[-1]
    export_model(build_standalone(space, best.arch), space, best.arch, root / "export", metrics=best.metrics)
    found = {
        "arch": space.format(result.front[0].arch),
        "role": "found",
        "flops": 2.5,
        "params": 0.031,
        "supernet_score": 52.5,
        "val_acc": 91.25,
        "test_acc": 90.5,
        "train_seconds": 754.0,
        "epochs": 30,
    }
    write_json(root / "retrain" / "found" / "result.json", found)
    baseline = {**found, "arch": space.format(evaluated[0].arch), "role": "random-equal-flops", "test_acc": 89.0}
    write_json(root / "retrain" / "random-0" / "result.json", baseline)
    truth = {
        space.format(e.arch): GroundTruthRow(
            space.format(e.arch), 80.0 + i, 79.0 + i, e.metrics["flops"], e.metrics["params"], 9.0, 0
        )
        for i, e in enumerate(evaluated[:6])
    }
    scores = {arch: 50.0 + i * (-1) ** i for i, arch in enumerate(truth)}
    write_json(
        root / "ranking" / "ranking_exact.json", {"calibration": "exact", **rank_scores(scores, truth, resamples=50)}
    )
    return root


def _page(run: Path) -> tuple[Path, str, _Page]:
    path = write_html_report(run)
    text = path.read_text()
    return path, text, _Page(text)


def _assert_self_contained(run: Path, text: str, page: _Page) -> None:
    assert page.images, "the page shows figures"
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    root = run.resolve()
    for href in page.links:
        target = (root / unquote(href)).resolve()
        assert target.is_file() and target.is_relative_to(root), href
    assert "http://" not in text and "https://" not in text
    assert not any(value.startswith("//") for value in page.attributes)
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}


def test_full_run_page_is_self_contained_with_links_to_every_file(tmp_path):
    run = _full_run(tmp_path / "run")
    path, text, page = _page(run)
    assert path == run / "report.html" and path.is_file()
    _assert_self_contained(run, text, page)
    linked = {unquote(href) for href in page.links}
    every_file = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and p.name != "report.html"}
    assert every_file <= linked
    # training curves, front.png, hypervolume, retrained test accuracy by role, ranking scatter (drawn from the JSON)
    assert len(page.images) == 5


def test_page_shows_settings_front_retrained_and_ranking(tmp_path):
    run = _full_run(tmp_path / "run")
    _, _, page = _page(run)
    assert page.fact("space") == "tiny" and page.fact("epochs") == "3" and page.fact("data_dir") == "null"
    assert page.fact("hypervolume") == "21 → 22" and page.fact("Pareto front") == "3 architectures"
    assert page.fact("scoring time") == "1 min 20 s" and page.fact("queried training time") == "6.0 s"
    front = page.table("#", "architecture")
    saved = SearchResult.load(run / "search-nsga2", get_space("tiny")).front
    assert len(saved) >= 3
    assert [row[1] for row in front] == [get_space("tiny").format(e.arch) for e in saved]
    assert front[0][2] == f"{saved[0].metrics['accuracy']:.2f} %"
    assert front[0][3] == f"{saved[0].metrics['flops']:.2f} M"
    assert page.fact("architecture") == get_space("tiny").format(saved[-1].arch)
    assert page.fact("accuracy") == f"{saved[-1].metrics['accuracy']:.2f} %"
    found = page.row("found")
    assert found[2:9] == ["2.50 M", "0.031 M", "52.50 %", "91.25 %", "90.50 %", "30", "12 min 34 s"]
    assert found[-1] == "retrain/found/result.json"
    ranking = page.table("predictor", "Kendall tau", "Spearman rho", "top-5 precision")
    assert [row[0] for row in ranking] == ["supernet", "params", "flops"]
    assert ranking[0][1].startswith("-0.200 [") and ranking[2][1] == "1.000 [1.000, 1.000]"


def test_retrained_json_list_is_shown_instead_of_the_folders(tmp_path):
    run = _full_run(tmp_path / "run")
    rows = [
        {"arch": "e6:k3-e3:k5-e6:k7", "role": "random-equal-flops", "flops": 2.4, "test_acc": 88.0},
        {"arch": "e3:k3-e3:k3-e3:k3", "role": "uniform-smallest", "flops": 1.2, "test_acc": 85.0},
    ]
    write_json(run / "retrained.json", rows)
    _, _, page = _page(run)
    assert page.row("random-equal-flops")[1] == "e6:k3-e3:k5-e6:k7"
    assert page.row("uniform-smallest")[-3:] == ["–", "–", "–"]  # no epochs, time or per-arch result file
    assert not [row for row in page.rows if row and row[0] == "found"]


def test_bare_run_with_config_and_metrics_renders(tmp_path):
    run = _bare_run(tmp_path / "bare")
    _, text, page = _page(run)
    _assert_self_contained(run, text, page)
    assert len(page.images) == 1  # the training curves
    assert page.row("3")[:4] == ["3", "1.1000", "60.75 %", "58.00 %"]
    words = " ".join(page.text)
    for note in ("No search yet", "Not retrained yet", "No ranking yet", "No feature analysis yet", "Nothing exported"):
        assert note in words
    assert {unquote(href) for href in page.links} == {"config.json", "metrics.csv"}


def test_a_one_epoch_run_gets_a_note_instead_of_curves(tmp_path):
    run = _bare_run(tmp_path / "bare")
    lines = (run / "metrics.csv").read_text().splitlines()
    (run / "metrics.csv").write_text("\n".join(lines[:2]) + "\n")
    _, _, page = _page(run)
    assert not page.images
    assert "One epoch so far: no curves to draw" in " ".join(page.text)
    assert page.row("1")[:4] == ["1", "1.9000", "30.50 %", "33.25 %"]


def test_values_from_files_are_escaped(tmp_path):
    run = _bare_run(tmp_path / "run")
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    write_json(run / "retrain" / "x y" / "result.json", {"arch": hostile, "role": "found & kept", "test_acc": 90})
    _, text, page = _page(run)
    assert "script" not in page.tags and len(page.images) == 1
    assert page.row("found & kept")[1] == hostile
    assert "retrain/x%20y/result.json" in page.links
    _assert_self_contained(run, text, page)


def test_not_a_run_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(MixPathError, match="is not a mixpath run folder"):
        write_html_report(tmp_path)


def _mixpath(*args):
    code = "import sys; from mixpath.cli import main; sys.argv = ['mixpath'] + sys.argv[1:]; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_report_html_writes_the_page_without_the_analysis(tmp_path):
    run = _bare_run(tmp_path / "run")
    result = _mixpath("report", str(run), "--html")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str(run / "report.html"))
    assert (run / "report.html").is_file() and not (run / "report").exists()
    missing = _mixpath("report", str(tmp_path / "nowhere"), "--html")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert [line for line in missing.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path / 'nowhere'} is not a mixpath run folder (no config.json); train one with `mixpath train`"
    ]


def test_pipeline_summary_shows_verdict_budget_and_recipe(tmp_path):
    run = _full_run(tmp_path / "run")
    write_json(
        run / "pipeline.json",
        {
            "budget": {"max_flops": 7.0812, "rule": "median FLOPs of 1000 sampled architectures"},
            "retraining": {"recipe": {"epochs": 2, "lr": 0.05, "batch_size": 96}, "seed": 0, "train_images": 54000},
            "roles": {"found": "most accurate on the search front within the FLOPs budget"},
            "verdict": "the search lost to params by 1.42 points",
            "seconds": {"training": 61.0},
        },
    )
    path, text, page = _page(run)
    assert page.fact("verdict") == "the search lost to params by 1.42 points"
    assert page.fact("FLOPs budget") == "7.08 M multiply-adds (median FLOPs of 1000 sampled architectures)"
    assert page.fact("recipe") == "2 epochs, lr 0.05, batch 96, seed 0"
    assert page.fact("images") == "54000 training, – test"
    assert page.fact("role found") == "most accurate on the search front within the FLOPs budget"
    assert page.fact("training time") == "1 min 01 s"
    assert "pipeline.json" in {unquote(href) for href in page.links}
    _assert_self_contained(run, text, page)


def test_pipeline_summary_of_wrong_shape_is_ignored(tmp_path):
    run = _full_run(tmp_path / "run")
    write_json(run / "pipeline.json", ["not", "a", "summary"])
    _, text, _ = _page(run)
    assert "<th>verdict</th>" not in text and "<th>FLOPs budget</th>" not in text
