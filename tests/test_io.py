"""Atomic writes: whole files or none, with the permissions a plain open would give."""

from __future__ import annotations

import os
import stat

import pytest

from mixpath.io import atomic_write, write_json


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_follow_the_umask_like_a_plain_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "result.json", {"a": 1})
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "result.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    write_json(tmp_path / "state.json", {"old": True})

    def fail(handle):
        handle.write(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "state.json", fail)
    assert (tmp_path / "state.json").read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
