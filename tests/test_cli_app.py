"""The CLI shell: one-line errors with exit 2, comma lists, single-threaded small work."""

from __future__ import annotations

import pytest
import torch

from numstab.cli import main
from numstab.cli._app import small_work_threads, split_list
from numstab.errors import InvalidArgumentError


def test_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("numstab: error: No such command 'no-such-command'")


def test_bare_numstab_shows_help_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 0
    assert "Usage: numstab" in capsys.readouterr().out


def test_split_list_names_the_option():
    assert split_list("--lrs", "0.1, 1", float) == (0.1, 1.0)
    with pytest.raises(InvalidArgumentError, match="--lrs must be a comma-separated list such as 0.01,0.1"):
        split_list("--lrs", "0.1,fast", float, example="0.01,0.1")


def test_small_work_runs_single_threaded_unless_asked(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        small_work_threads()
        assert torch.get_num_threads() == 2  # the user asked: left alone
        monkeypatch.delenv("OMP_NUM_THREADS")
        small_work_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_lab_commands_accept_the_python_spelling(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "matrix_products", "--scales", "0.5", "--n", "5", "--trials", "4", "--json", "-"])
    assert exit_info.value.code == 0
    assert '"k": 4' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["lab", "--help"])
    assert "matrix_products" not in capsys.readouterr().out  # hidden: the help lists each command once
