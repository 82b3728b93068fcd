"""The CLI builds only the parser of the command it runs, so a light command stays light."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmssl.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
# runs `python -m mmssl ARGS` in this interpreter, then prints the mmssl and torch modules it loaded
PROBE = ("import json, runpy, sys\n"
         "sys.argv = ['mmssl', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('mmssl', run_name='__main__', alter_sys=True)\n"
         "except SystemExit:\n    pass\n"
         "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('mmssl', 'torch')))))")


def _modules_after(*args: str) -> tuple[list[str], str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    *help_lines, modules = out.stdout.rstrip("\n").split("\n")
    return json.loads(modules), "\n".join(help_lines)


def test_search_help_loads_no_recipe_pretext_contrastive_or_torch():
    modules, help_text = _modules_after("search", "--help")
    assert "--index INDEX" in help_text and "--query QUERY" in help_text
    heavy = [m for m in modules if m.startswith(("mmssl.pretext", "mmssl.contrastive", "mmssl.recipes", "torch"))]
    assert heavy == []
    assert "mmssl.cli" in modules  # the probe really ran the CLI


def test_the_probe_sees_what_a_heavy_command_loads():
    modules, help_text = _modules_after("pretrain", "rotation", "--help")
    assert "--train.max-steps" in help_text
    assert {"mmssl.recipes.pretext", "mmssl.pretext.registry", "torch"} <= set(modules)
    assert not [m for m in modules if m.startswith(("mmssl.contrastive", "mmssl.recipes.dual_encoder"))]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser(["--help"]).parse_args(["--help"])
    listed = capsys.readouterr().out
    assert all(f"    {name}" in listed for name in COMMANDS)


def test_without_argv_every_command_gets_its_arguments():
    args = build_parser().parse_args(["search", "--index", "code", "--query", "merge two lists", "-k", "3"])
    assert (args.command, args.index, args.query, args.k) == ("search", "code", "merge two lists", 3)
    args = build_parser(["eval", "--task", "image"]).parse_args(["eval", "--task", "image"])
    assert args.task == "image" and args.split == "test"
