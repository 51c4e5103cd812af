"""Durable files: atomic writes (whole files or none, with the permissions a plain open would give) and
appended lines (a torn last line is dropped)."""

from __future__ import annotations

import os
import stat

import pytest

from mixpath.io import append_line, atomic_write, read_lines, write_json


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


def test_appended_lines_drop_a_torn_last_line_and_never_glue_onto_it(tmp_path):
    path = tmp_path / "log" / "lines.csv"
    assert read_lines(path) == []
    append_line(path, "1,2", header="a,b")
    append_line(path, "3,4", header="a,b")
    with path.open("a") as handle:
        handle.write("5,")  # a writer killed mid-line
    assert read_lines(path) == ["a,b", "1,2", "3,4"]
    assert path.read_text().endswith("5,")  # reading changes nothing
    append_line(path, "6,7", header="a,b")
    assert path.read_text() == "a,b\n1,2\n3,4\n6,7\n"


def test_a_torn_header_is_written_again(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text("a,")
    append_line(path, "1,2", header="a,b")
    assert read_lines(path) == ["a,b", "1,2"]
    with pytest.raises(ValueError):
        append_line(path, "two\nlines")
