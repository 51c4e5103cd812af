"""The kernel cache builds once, loads only a library its record vouches for, and falls back when it must.

The cache tests build with a stand-in compiler: the system ``cc`` with the kernels' flags, on a one-function
source (milliseconds, not the kernels' seconds), counting its builds. Loads run in child processes, as
training processes would: a library a process has loaded cannot be replaced under it in a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixpath.kernels import build, cpu

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

ROOT = Path(__file__).resolve().parents[1]
LOAD = "from mixpath.kernels.build import load_library; library, sha = load_library(); print(sha, library.probe())"
STUB = "int probe(void) { return 7; }"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache and a compiler that builds ``STUB`` in place of the kernels and counts its builds in
    ``builds``; both in this process's environment, which child processes inherit."""
    compiler = tmp_path / "cc"
    lines = [
        "#!/bin/sh",
        'case "$*" in *-shared*)',
        f"  echo build >> {tmp_path / 'builds'}",
        f'  for arg; do case "$arg" in *.c) echo \'{STUB}\' > "$arg";; esac; done;;',
        "esac",
        'exec cc "$@"',
    ]
    compiler.write_text("\n".join(lines) + "\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return tmp_path


def _builds(cache: Path) -> int:
    path = cache / "builds"
    return len(path.read_text().split()) if path.exists() else 0


def _load_in_child() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True)


def _folder() -> Path:
    return build.cache_root() / build.built_from_sha256(build.source())[:16]


def test_processes_starting_together_build_once_and_both_load(cache):
    go = cache / "go"
    code = (  # import, say so, wait for the start, load
        "import pathlib, sys, time\n"
        "from mixpath.kernels.build import load_library\n"
        "pathlib.Path(sys.argv[2]).touch()\n"
        "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.001)\n"
        "library, sha = load_library()\n"
        "print(sha, library.probe())\n"
    )
    ready = [cache / f"ready{i}" for i in range(2)]
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(go), str(r)], stdout=subprocess.PIPE, text=True)
        for r in ready
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    loaded = [child.communicate(timeout=120)[0].strip() for child in children]
    assert _builds(cache) == 1
    record = json.loads((_folder() / build.RECORD).read_text())
    assert loaded == [f"{record['library_sha256']} 7"] * 2


@pytest.mark.parametrize("damage", ["truncated", "planted", "garbled record"])
def test_a_damaged_or_planted_library_is_rebuilt_not_loaded(cache, damage):
    first = _load_in_child()
    assert first.returncode == 0, first.stderr
    library, marker = _folder() / build.LIBRARY, cache / "constructor-ran"
    if damage == "truncated":  # dlopen would map past the end of the file: SIGBUS, exit 135
        library.write_bytes(library.read_bytes()[: library.stat().st_size // 2])
    elif damage == "planted":
        source = cache / "planted.c"
        constructor = f'__attribute__((constructor)) static void run(void) {{ fclose(fopen("{marker}", "w")); }}'
        source.write_text(f"#include <stdio.h>\n{constructor}\nint probe(void) {{ return 666; }}\n")
        subprocess.run(["cc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    else:
        (_folder() / build.RECORD).write_text("{")
    second = _load_in_child()
    assert second.returncode == 0, second.stderr
    assert second.stdout.split()[1] == "7" and not marker.exists()
    assert _builds(cache) == 2
    assert second.stdout.split()[0] == json.loads((_folder() / build.RECORD).read_text())["library_sha256"]


def test_a_cache_others_can_write_is_not_trusted(cache):
    assert _load_in_child().returncode == 0
    _folder().chmod(0o777)
    child = _load_in_child()
    assert child.returncode != 0 and "writable by other users" in child.stderr
    assert _builds(cache) == 1


@pytest.fixture
def reload_kernels(monkeypatch: pytest.MonkeyPatch):
    """Let ``cpu`` load its library again under this test's environment, and again after it."""
    cpu._load.cache_clear()
    cpu._library.cache_clear()
    yield
    monkeypatch.undo()
    cpu._load.cache_clear()
    cpu._library.cache_clear()


def test_an_unwritable_cache_falls_back_with_one_warning(tmp_path, monkeypatch, reload_kernels, caplog):
    (tmp_path / "file").write_text("")  # a cache below a file: no folder can be made there, even by root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert not cpu.available()
    assert cpu.kernels_in_use() == cpu.PYTORCH
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "using PyTorch's operators" in warnings[0].getMessage()


def test_kernels_in_use_names_what_computes_and_a_changed_resume_warns(monkeypatch, reload_kernels):
    with_kernels = cpu.kernels_in_use()
    if cpu.available():
        assert with_kernels.startswith("mixpath-kernels sha256:")
    monkeypatch.setenv(cpu.SWITCH, "0")
    cpu._load.cache_clear()
    cpu._library.cache_clear()
    assert cpu.kernels_in_use() == cpu.PYTORCH and not cpu.available()
    assert cpu.kernel_change_warning(None) is None  # a checkpoint from before the record
    assert cpu.kernel_change_warning(cpu.PYTORCH) is None
    message = cpu.kernel_change_warning("mixpath-kernels sha256:0123456789abcdef")
    assert "mixpath-kernels sha256:0123456789abcdef" in message and cpu.PYTORCH in message


def test_the_runtime_imports_without_torch():
    code = "import sys, mixpath.kernels.runtime; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False"
