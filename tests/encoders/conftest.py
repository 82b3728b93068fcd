"""Tiny real data for the encoder tests: stdlib functions and their docstrings, and a code tokenizer."""

import ast
import importlib
import inspect

import pytest

# small, stable, well-documented standard-library modules
MODULES = ("textwrap", "shlex", "fnmatch", "posixpath", "string", "urllib.parse", "base64", "calendar",
           "difflib", "json.decoder", "json.encoder", "email.utils", "html", "ipaddress", "statistics")


def _pairs() -> list[tuple[str, str]]:
    """(first docstring paragraph, function code without its docstring), CodeSearchNet-style."""
    pairs = []
    for name in MODULES:
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("__"):
                continue
            docstring = ast.get_docstring(node)
            if not docstring:
                continue
            summary = " ".join(docstring.split("\n\n")[0].split())
            node.body = node.body[1:] or [ast.Pass()]
            code = ast.unparse(node)
            if len(summary.split()) >= 3 and code.count("\n") >= 2:
                pairs.append((summary, code))
    return pairs


@pytest.fixture(scope="session")
def stdlib_pairs() -> list[tuple[str, str]]:
    pairs = _pairs()
    assert len(pairs) >= 100
    return pairs


@pytest.fixture(scope="session")
def code_tokenizer(stdlib_pairs):
    from mmssl.encoders import train_code_tokenizer

    return train_code_tokenizer([text for pair in stdlib_pairs for text in pair], vocab_size=3000)
