"""``SearchService``: the app's whole behaviour as plain Python, no Gradio: load indexes with their
models, clean queries, search text→image, image→image and text→code, build indexes from allowed folders.

    service = SearchService.load(AppConfig(indexes=["emoji-clipart", "code"]))
    result = service.search_images("a red fire truck", k=12)
    result.hits[0].score, result.hits[0].metadata["caption"], result.seconds
    service.search_code("parse a query string into a dict", k=5, package="stdlib")

Every error a user can cause (empty query, unreadable upload, missing index, a folder the operator
did not allow) raises :class:`UserError` whose message is meant to be shown as is; the UI never
shows a traceback. Queries encode side by side without a lock (inference is thread-safe; MiniLM
serialises only its tokenizer call); each index's lock guards its writes against its searches.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from mmssl.app.config import DEFAULT_CODE_INDEX, DEFAULT_IMAGE_INDEX, AppConfig
from mmssl.index import (Hit, Index, IndexBusyError, IndexCorruptError, IndexExistsError, IndexModelMismatchError,
                         IndexNotFoundError, build_index, index_folder, load_index, read_manifest)
from mmssl.index.embedding import with_encoding

log = logging.getLogger("mmssl.app")

MAX_QUERY_CHARS = 1000  # the text towers read ≤ 128 tokens; longer input only costs tokenizing time
EXAMPLE_IMAGE_QUERY = "a red fire truck"
EXAMPLE_CODE_QUERY = "parse a query string into a dictionary"
NOTHING_CLOSE = "Nothing close: none of these looks much like your query; they are the nearest there are."
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KIND_FOR_MODEL = {"image": "image", "text": "image", "code": "code"}  # index item kind -> which model embeds queries
PAGE_DEPTH = 1000  # the deepest rank a page may reach (offset + k)
QUERY_CACHE_SIZE = 256  # encoded text queries kept, so the next page of a query does not encode it again

class UserError(ValueError):
    """Something the user can fix; the message is written for them and shown in the UI as is."""

@dataclass
class SearchResult:
    """Ranked hits, best first, with the seconds spent encoding + searching and an optional note."""

    hits: list[Hit]
    seconds: float
    note: str = ""
    nothing_close: bool = False  # the index's calibrated threshold says no hit is close (the nearest are shown)
    similar: list[list[Hit]] = field(default_factory=list)  # per hit, its near-duplicates folded under it
    offset: int = 0  # rank (0-based) of the first hit in the whole ranking
    more: bool = False  # the ranking goes on past this page

@dataclass
class LoadedIndex:
    """An index ready to search: its name, the :class:`~mmssl.index.Index`, and the query model."""

    name: str
    index: Index
    model: object
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards index writes against searches
    build_note: str = ""  # what the build that made it skipped (shown after a build from the app)
    closeness: object = None  # its calibrated "nothing close" threshold (mmssl.index.closeness), if any

    @property
    def kind(self) -> str:
        """``"image"`` or ``"code"``: which tab searches it."""
        return KIND_FOR_MODEL[self.index.manifest.kind]

def clean_query(text) -> tuple[str, str]:
    """``(query, note)``: whitespace collapsed, control characters dropped, cut to ``MAX_QUERY_CHARS``.

    Raises:
        UserError: the query is empty or whitespace only.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if not text:
        raise UserError("Type what you are looking for first, for example “" + EXAMPLE_IMAGE_QUERY + "”.")
    if len(text) > MAX_QUERY_CHARS:
        return text[:MAX_QUERY_CHARS], (f"Your query has {len(text):,} characters; the search used its first "
                                        f"{MAX_QUERY_CHARS:,}.")
    return text, ""

def _closeness(loaded: LoadedIndex):
    """The calibrated "nothing close" of an image index, None if it has none (or an unreadable one: logged)."""
    from mmssl.index.closeness import load_closeness

    if loaded.kind != "image":
        return None
    try:
        return load_closeness(loaded.index)
    except Exception:  # noqa: BLE001 - a broken sidecar costs the flag, never the index
        log.exception("index %s: its nothing-close calibration could not be read", loaded.name)
        return None


def _terms(query: str, needs_positive: bool = True):
    """The query's arithmetic (:func:`mmssl.index.query_terms.parse_query`); a query it cannot read is a UserError."""
    from mmssl.index.query_terms import QueryTermsError, parse_query

    try:
        return parse_query(query, needs_positive)
    except QueryTermsError as e:
        raise UserError(str(e)) from None


def _join(note: str, more: str) -> str:
    return f"{note} {more}" if note else more


class QueryVectors:
    """The last ``size`` encoded text queries (an LRU), keyed by the model (fingerprint and encoding) and the
    text: asking for the next page of a query searches with its kept vector instead of encoding it again."""

    def __init__(self, size: int = QUERY_CACHE_SIZE):
        self.size, self.encoded, self.reused = size, 0, 0
        self._vectors: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, loaded: LoadedIndex, key: str, encode):
        """The vectors of ``key`` for ``loaded``'s model: kept ones, or ``encode()`` (then kept)."""
        manifest = loaded.index.manifest
        full_key = (manifest.model_fingerprint, manifest.encoding, key)
        with self._lock:
            if full_key in self._vectors:
                self._vectors.move_to_end(full_key)
                self.reused += 1
                return self._vectors[full_key]
        vectors = encode()  # outside the lock: queries encode side by side
        with self._lock:
            self.encoded += 1
            self._vectors[full_key] = vectors
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vectors

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


def check_offset(offset, k: int) -> int:
    """A page's first rank (0-based); the page may reach rank ``PAGE_DEPTH`` at most."""
    try:
        offset = int(offset or 0)
    except (TypeError, ValueError):
        raise UserError("The offset (where the page starts) must be a whole number from 0.") from None
    if offset < 0 or offset + k > PAGE_DEPTH:
        raise UserError(f"Pages reach result {PAGE_DEPTH} at most: choose an offset from 0 to {PAGE_DEPTH - k}.")
    return offset


def check_k(k, max_k: int) -> int:
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise UserError(f"The number of results must be a whole number from 1 to {max_k}.") from None
    return max(1, min(k, max_k))

def is_inside(path: Path, folders) -> bool:
    """Whether the resolved ``path`` is one of ``folders`` or inside one (symlinks resolved, no ``..`` escapes)."""
    path = Path(os.path.realpath(path))
    return any(path == Path(f) or Path(f) in path.parents for f in folders)

class SearchService:
    """The loaded indexes and models, and every search the app offers."""

    def __init__(self, config: AppConfig, models: dict | None = None):
        self.config = config
        self.indexes: dict[str, LoadedIndex] = {}
        self.problems: dict[str, str] = {}  # index name -> why it is not loaded (shown in the Indexes tab)
        self.allowed_build_folders = [os.path.realpath(Path(f).expanduser()) for f in config.allow_folders]
        self._models: dict[str, object] = dict(models or {})  # model path -> loaded model
        self._write_lock = threading.Lock()
        self._servable: dict[int, frozenset[str]] = {}  # id(Index) -> real paths of its items
        self._servable_union: tuple[tuple, frozenset[str]] = ((None,), frozenset())
        self.query_vectors = QueryVectors()
        self.jobs = None  # the background builds' JobRunner (mmssl.app.jobs), when serve started one
        self.on_loaded: list = []  # callables(name) run after an index is (re)loaded, e.g. to serve its folders
        self.retrains: list = []  # retrains started from the Indexes tab (mmssl.app.retrain.Retrain), oldest first
        self._retrained_models: dict[str, object] = {}  # their new models, by path

    @classmethod
    def load(cls, config: AppConfig, models: dict | None = None) -> "SearchService":
        """Load every index of ``config.indexes``; one that cannot load is recorded in ``problems``.
        ``models`` (path -> loaded model) are reused instead of loaded again."""
        service = cls(config, models)
        for name in config.indexes:
            service.open_index(name)
        return service

    # ------------------------------------------------------------------ loading

    def model_for(self, kind: str):
        """The query model for ``"image"`` or ``"code"`` indexes (loaded once).

        Raises:
            UserError: the model folder is missing.
        """
        from mmssl.model import load_model, model_exists

        path = self.config.image_model if kind == "image" else self.config.code_model
        if path not in self._models:
            if not model_exists(path):
                what = "image-text" if kind == "image" else "code"
                raise UserError(f"No {what} model at {path}. Train one (`make models`) or pass "
                                f"--{kind}-model PATH.")
            model = load_model(path)
            self._models[path] = model
        return self._models[path]

    def open_index(self, name: str) -> LoadedIndex | None:
        """Load ``indexes/NAME`` (or a folder) with the model of its kind; None (and a problem) if it cannot.
        A missing, corrupt or unloadable index is recorded in ``problems`` (shown in the Indexes tab);
        the others load and serve as usual."""
        label = Path(name).name
        try:
            folder = index_folder(name)
            manifest = read_manifest(folder)  # the manifest alone says which model, and how it encoded
            # an index retrained from the page answers with its new model; the others with their kind's
            own = self._retrained_models.get(manifest.model_path)
            model = with_encoding(own or self.model_for(KIND_FOR_MODEL[manifest.kind]), manifest.encoding)
            loaded = LoadedIndex(label, load_index(folder, model), model)
            loaded.closeness = _closeness(loaded)
        except IndexNotFoundError:
            self.problems[label] = (f"No index at {index_folder(name)}. Build it with `python -m mmssl index build "
                                    f"{label} ...` or from the Indexes tab.")
            return None
        except (IndexCorruptError, IndexModelMismatchError, UserError) as e:
            self.problems[label] = str(e)
            return None
        except Exception as e:  # noqa: BLE001 - one index that cannot load must not stop the app
            log.exception("index %s could not be loaded", label)
            self.problems[label] = f"could not be loaded ({type(e).__name__}: {e}); rebuild it with " \
                                   f"`python -m mmssl index build {label} ...`"
            return None
        self.problems.pop(label, None)
        old = self.indexes.get(label)
        self.indexes[label] = loaded
        if old is not None:
            self._forget_servable(old.index)
            with old.lock:  # a search still running on the old copy finishes first
                old.index.close()
        for listener in self.on_loaded:
            listener(label)
        return loaded

    def names(self, kind: str) -> list[str]:
        """Loaded index names of ``kind`` (``"image"`` or ``"code"``), in load order."""
        return [n for n, loaded in self.indexes.items() if loaded.kind == kind]

    def get(self, name: str | None, kind: str) -> LoadedIndex:
        """The index ``name`` (default: the first of its kind).

        Raises:
            UserError: no such index is loaded (the message says how to build one).
        """
        names = self.names(kind)
        if not names:
            problems = [f"{n}: {p}" for n, p in self.problems.items()]
            hint = (" " + " ".join(problems)) if problems else ""
            what = "image" if kind == "image" else "code"
            raise UserError(f"No {what} index is loaded.{hint}")
        name = name or names[0]
        if name not in names:
            raise UserError(f"There is no {kind} index named {name!r}; choose one of: {', '.join(names)}.")
        return self.indexes[name]

    # ------------------------------------------------------------------ searching

    def _encode(self, model, method: str, inputs: list):
        # no lock: inference is thread-safe (MiniLM serialises only its tokenizer call), so concurrent
        # queries encode side by side on separate cores
        return getattr(model, method)(inputs)

    def _search(self, loaded: LoadedIndex, vectors, k: int, filter=None) -> list[Hit]:
        with loaded.lock:
            return loaded.index.search(vectors, k=k, filter=filter)[0]

    def search_images(self, query, k: int = 12, index: str | None = None, source: str | None = None, *,
                      offset: int = 0, collapse: bool = False) -> SearchResult:
        """Text → image: the best ``k`` images for ``query`` from rank ``offset`` on (a page; ``more`` says
        whether the ranking goes on), optionally only from one source corpus/folder. The query may add and
        subtract weighted terms (``beach -people``, ``2:cat + hat``: :mod:`mmssl.index.query_terms`); the note
        then says how it was read. With ``collapse`` (the page's default; off here, as in the CLI and REST) the same concept in several artworks, icon sets or skin
        tones is one hit, the others in ``similar`` (:mod:`mmssl.index.dedup`); pages then count concepts.
        The next page of a query reuses its encoded vector (:class:`QueryVectors`)."""
        from mmssl.index.query_terms import query_vectors

        start = time.perf_counter()
        loaded = self.get(index, "image")
        query, note = clean_query(query)
        k = check_k(k, self.config.max_k)
        offset = check_offset(offset, k)
        parsed = _terms(query)
        vectors = self.query_vectors.get(loaded, "image:" + query, lambda: query_vectors(
            lambda texts: self._encode(loaded.model, "encode_text", texts), [parsed]))  # (1, E)
        ranked: list[Hit] = []

        def search(count: int) -> list[Hit]:
            ranked[:] = self._search(loaded, vectors, count, {"source": source} if source else None)
            return ranked

        hits, similar, more = self._page(search, k, offset, collapse)
        if not parsed.is_plain:
            note = _join(note, f"Searched for {parsed.describe()}.")
        far = self._nothing_close(loaded, vectors[0], ranked[:1])  # the best hit of the whole ranking
        if far:
            note = _join(NOTHING_CLOSE, note)
        return SearchResult(hits, time.perf_counter() - start, note, far, similar, offset, more)

    @staticmethod
    def _page(search, k: int, offset: int, collapse: bool) -> tuple[list[Hit], list[list[Hit]], bool]:
        """``(hits, similar, more)`` of ranks ``offset .. offset + k``; ``search(n)`` gives the best ``n`` hits."""
        from mmssl.index.dedup import collapsed_page

        if collapse:
            groups, more = collapsed_page(search, k, offset)
            return [g.hit for g in groups], [g.similar for g in groups], more
        hits = search(offset + k + 1)  # one more than the page: whether another page follows
        page = hits[offset:offset + k]
        return page, [[] for _ in page], len(hits) > offset + k

    def _nothing_close(self, loaded: LoadedIndex, vector, hits: list[Hit]) -> bool:
        """Whether the index's calibrated threshold calls the best hit not close (False when uncalibrated)."""
        closeness = loaded.closeness
        if closeness is None or not hits:
            return False
        with loaded.lock:
            if not closeness.describes(loaded.index):  # written since it was calibrated
                return False
        return closeness.is_nothing_close(vector, hits[0].score, hits[0].id)

    def search_by_image(self, image, k: int = 12, index: str | None = None, exclude_id: int | None = None,
                        modifier: str = "") -> SearchResult:
        """Image → image: the best ``k`` images like ``image`` (a PIL image or a file path), moved by the text
        terms of ``modifier`` when given ("this, but red": ``red``; ``-text``; ``2:red - blue``).

        Raises:
            UserError: no image, one that cannot be decoded, or a modifier that cannot be read.
        """
        from mmssl.data.imageio import ImageDecodeError
        from mmssl.index.query_terms import with_example

        start = time.perf_counter()
        loaded = self.get(index, "image")
        k = check_k(k, self.config.max_k)
        if image is None:
            raise UserError("Upload an image (PNG, JPEG or WebP) to find images like it.")
        if isinstance(image, UnreadableUpload):
            raise UserError(image.message)
        parsed, note = None, ""
        if modifier is not None and str(modifier).strip():
            text, note = clean_query(modifier)
            parsed = _terms(text, needs_positive=False)
        try:
            vectors = self._encode(loaded.model, "encode_image", [image])  # (1, E)
        except (ImageDecodeError, OSError, ValueError) as e:
            raise UserError("That file could not be read as an image (is it a PNG, JPEG or WebP, and complete?). "
                            f"Details: {short_reason(e)}") from e
        if parsed is not None:
            encode = lambda texts: self._encode(loaded.model, "encode_text", texts)  # noqa: E731
            vectors = with_example(vectors[0], parsed, encode)[None, :]  # (1, E)
            note = _join(note, f"Like the image, {parsed.describe()}.")
        hits = self._search(loaded, vectors, k + (exclude_id is not None), None)
        hits = [h for h in hits if h.id != exclude_id][:k]
        return SearchResult(hits, time.perf_counter() - start, note)

    def search_like_hit(self, hit: Hit, k: int = 12, index: str | None = None, modifier: str = "") -> SearchResult:
        """Image → image from a result the user clicked: its file is read only if it is an indexed item."""
        loaded = self.get(index, "image")
        path = str(hit.metadata.get("path", ""))
        if not path or os.path.realpath(path) not in self.servable_files():
            raise UserError("That result is not part of a loaded image index any more; search again.")
        return self.search_by_image(path, k, loaded.name, exclude_id=hit.id, modifier=modifier)

    def search_code(self, query, k: int = 10, index: str | None = None, package: str | None = None,
                    module: str | None = None, *, path_glob: str = "", kind: str = "any", exclude_tests: bool = False,
                    mode: str = "hybrid", offset: int = 0) -> SearchResult:
        """Natural language → code: the best ``k`` functions from rank ``offset`` on (hybrid dense + BM25 by
        default, each hit's ``dense`` and ``lexical`` scores kept), optionally filtered
        (:class:`~mmssl.index.code_filters.CodeFilter`). The next page of a query reuses its encoded vector."""
        from mmssl.index.code_filters import CodeFilter, CodeFilterError
        from mmssl.index.hybrid import SEARCH_MODES, hybrid_search

        start = time.perf_counter()
        loaded = self.get(index, "code")
        query, note = clean_query(query)
        k = check_k(k, self.config.max_k)
        offset = check_offset(offset, k)
        if mode not in SEARCH_MODES:
            raise UserError(f"The ranking must be one of {', '.join(SEARCH_MODES)}, not {mode!r}.")
        try:
            filter = CodeFilter(package or "", module or "", path_glob or "", kind or "any",
                                bool(exclude_tests)).as_filter()
        except CodeFilterError as e:
            raise UserError(str(e)) from None
        vectors = None if mode == "lexical" else self.query_vectors.get(
            loaded, "code:" + query, lambda: self._encode(loaded.model, "encode_text", [query]))  # (1, E)
        with loaded.lock:
            hits = hybrid_search(loaded.index, [query], vectors, offset + k + 1, mode=mode, filter=filter)[0]
        more, hits = len(hits) > offset + k, hits[offset:offset + k]
        if not hits and filter and not offset:
            note = (note + " " if note else "") + "Nothing matches those filters."
        return SearchResult(hits, time.perf_counter() - start, note, offset=offset, more=more)

    def source_file(self, hit: Hit, index: str | None = None) -> str | None:
        """The absolute file of a code hit on this machine (for editor links), or None when the index was
        not built from a folder that still holds it (a corpus read from wheels)."""
        loaded = self.get(index, "code")
        folder = loaded.index.manifest.source.get("folder")
        path = str(hit.metadata.get("path", ""))
        if not folder or not path:
            return None
        for candidate in (Path(folder) / path, Path(folder) / str(hit.metadata.get("repo", "")) / path):
            if candidate.is_file():
                return str(candidate.resolve())
        return None

    # ------------------------------------------------------------------ what is loaded

    def field_values(self, field: str, kind: str, index: str | None = None) -> list[str]:
        """The distinct values of a metadata field over a loaded index (none loaded: []), for the filters."""
        try:
            loaded = self.get(index, kind)
        except UserError:
            return []
        with loaded.lock:
            return loaded.index.distinct_values(field)

    def packages(self, index: str | None = None) -> list[str]:
        """The packages (``repo`` field) of a code index."""
        return self.field_values("repo", "code", index)

    def sources(self, index: str | None = None) -> list[str]:
        """The sources (corpus or folder names) of an image index."""
        return self.field_values("source", "image", index)

    def image_folders(self) -> list[str]:
        """Every folder that directly holds an indexed image (where result images are read from)."""
        folders = set()
        for loaded in list(self.indexes.values()):
            if loaded.kind == "image":
                with loaded.lock:
                    folders.update(loaded.index.indexed_folders())
        return sorted(folders)

    def servable_files(self) -> frozenset[str]:
        """Real paths of every item of the loaded image indexes: the only files of the indexed folders the
        app serves (:class:`~mmssl.app.guard.HttpGuard`). Read once per loaded index."""
        images = [loaded for loaded in list(self.indexes.values()) if loaded.kind == "image"]
        key = tuple(id(loaded.index) for loaded in images)
        if self._servable_union[0] == key:  # asked on every file request: the union is kept until indexes change
            return self._servable_union[1]
        for loaded in images:
            if id(loaded.index) not in self._servable:
                with loaded.lock:
                    self._servable[id(loaded.index)] = frozenset(os.path.realpath(p) for p in loaded.index.item_paths())
        union = frozenset().union(*(self._servable[id(loaded.index)] for loaded in images))
        self._servable_union = (key, union)
        return union

    def _forget_servable(self, index: Index) -> None:
        """Drop the cached paths of ``index`` (it was replaced or refreshed)."""
        self._servable.pop(id(index), None)
        self._servable_union = ((None,), frozenset())

    def describe(self) -> list[dict]:
        """One row per index (loaded or not) for the Indexes tab."""
        rows = []
        for name, loaded in self.indexes.items():
            m = loaded.index.manifest
            source = m.source.get("folder") or ", ".join(str(v) for k, v in m.source.items() if k != "type")
            rows.append({"index": name, "kind": m.kind, "items": m.count, "model": Path(m.model_path).name,
                         "structure": m.factory, "built": _day_and_time(m.built_at),
                         "updated": _day_and_time(m.updated_at), "source": source, "status": "loaded"})
        for name, problem in self.problems.items():
            rows.append({"index": name, "kind": "—", "items": 0, "model": "—", "structure": "—", "built": "—",
                         "updated": "—", "source": "—", "status": problem})
        return rows

    # ------------------------------------------------------------------ building from the UI

    def check_build_folder(self, folder) -> Path:
        """``folder`` resolved, if the operator allowed it (``--allow-folder``); else UserError."""
        if not self.allowed_build_folders:
            raise UserError("Building from the app is off: the operator allows no folder (start the app with "
                            "--allow-folder PATH).")
        if not folder or not isinstance(folder, str):
            raise UserError("Choose one of the folders the operator allows.")
        path = Path(os.path.realpath(Path(folder).expanduser()))
        if not is_inside(path, self.allowed_build_folders):
            raise UserError(f"{folder} is not a folder the operator allows; choose one of: "
                            f"{', '.join(self.allowed_build_folders)}.")
        if not path.is_dir():
            raise UserError(f"{folder} is not a folder any more.")
        return path

    def protected_names(self) -> set[str]:
        """Index names the app never builds over: the demo indexes and every index the operator loaded at
        start (unless the server runs with ``--allow-replace``)."""
        if self.config.allow_replace:
            return set()
        return {DEFAULT_IMAGE_INDEX, DEFAULT_CODE_INDEX, *(Path(n).name for n in self.config.indexes)}

    def build_from_folder(self, name: str, folder: str, kind: str, progress: bool = True,
                          replace: bool = False) -> LoadedIndex:
        """Index an allowed folder of images (``kind="image"``) or a Python project (``kind="code"``) as
        ``indexes/NAME`` and load it. An existing index of that name is replaced (atomically) only when
        ``replace`` is asked for and the name is not protected (:meth:`protected_names`).

        Raises:
            UserError: a bad name, a folder not allowed, a name taken or protected, a build of that name
                already running, no model, or nothing to index.
        """
        from mmssl.data.report import CorpusReport
        from mmssl.index import EmptyIndexError, code_folder_items, image_folder_items

        name = (name or "").strip()
        if not INDEX_NAME.fullmatch(name):
            raise UserError("Index names use lowercase letters, digits, - and _ (up to 64), e.g. my-photos.")
        if kind not in ("image", "code"):
            raise UserError("Choose what the folder holds: images or a Python project.")
        path = self.check_build_folder(folder)
        if name in self.protected_names():
            raise UserError(f"{name!r} is the name of one of this server's own indexes, which cannot be replaced "
                            "from the app; choose another name.")
        existing = self.indexes.get(name)
        if existing is not None and existing.kind != kind:
            raise UserError(f"{name!r} is already a {existing.kind} index; choose another name.")
        from mmssl.model import BUILD_ENCODING

        model = with_encoding(self.model_for(kind), BUILD_ENCODING)
        skipped = CorpusReport("folder")
        items, source = image_folder_items(path, skipped) if kind == "image" else code_folder_items(path)
        with self._write_lock:
            try:
                build_index(name, model, items, source=source, progress=progress, replace=replace)
            except EmptyIndexError:
                what = "images (png, jpg, jpeg, webp)" if kind == "image" else "functions with docstrings"
                raise UserError(f"{folder} holds no {what} to index." + (f" ({skipped.skipped_line()})"
                                                                        if skipped.skipped else "")) from None
            except IndexExistsError:
                raise UserError(f"There is already an index named {name!r}. Tick “replace” to build over it, or "
                                "choose another name.") from None
            except IndexBusyError:
                raise UserError(f"{name!r} is being built right now by someone else; wait for that build to "
                                "finish, then try again.") from None
            loaded = self.open_index(name)
        if loaded is None:
            raise UserError(self.problems.get(name, f"{name} was built but could not be loaded."))
        loaded.build_note = skipped.skipped_line()
        return loaded

    def refresh(self, name: str) -> str:
        """Re-embed only changed files of an image-folder index built from an allowed folder; a summary line."""
        loaded = self.indexes.get(name)
        if loaded is None:
            raise UserError(f"No loaded index named {name!r}.")
        folder = loaded.index.manifest.source.get("folder")
        if loaded.kind != "image" or not folder:
            raise UserError(f"{name} was not built from an image folder; rebuild it instead.")
        self.check_build_folder(folder)
        with self._write_lock, loaded.lock:
            loaded.index.model = loaded.model
            try:
                report = loaded.index.refresh()
            except IndexBusyError:
                raise UserError(f"{name!r} is being built or refreshed right now; try again when that is done.") \
                    from None
            self._forget_servable(loaded.index)
        return (f"{name}: {len(report.added)} added, {len(report.reembedded)} re-embedded, {len(report.removed)} "
                f"removed, {report.unchanged} unchanged.")

    # ------------------------------------------------------------------ feedback and the user's own queries

    def feedback_log(self, name: str):
        """The :class:`~mmssl.app.feedback.FeedbackLog` of a loaded index (``indexes/NAME.feedback.jsonl``)."""
        from mmssl.app.feedback import FeedbackLog, feedback_path

        loaded = self.indexes.get(name or "")
        if loaded is None:
            raise UserError(f"No loaded index named {name!r}.")
        return FeedbackLog(feedback_path(loaded.index.folder))

    def item_reference(self, name: str, hit: Hit) -> str:
        """How a queries file names ``hit``: an image's path; a function's ``path:function`` (with its
        package in front when the index holds several)."""
        from mmssl.eval.user_queries import code_reference

        loaded = self.indexes[name]
        if loaded.kind == "image":
            return str(hit.metadata["path"])
        with loaded.lock:
            several = len(loaded.index.distinct_values("repo")) > 1
        return code_reference({"path": hit.metadata.get("path", ""), **hit.metadata}, with_repo=several)

    def record_feedback(self, name: str | None, query, hit: Hit | None, label: str, kind: str = "image") -> str:
        """Save a thumbs up (``"up"``) or down on one result of a text query; a line saying what was saved.

        Raises:
            UserError: no query or no result to vote on, an unknown index or label.
        """
        loaded = self.get(name, kind)
        if hit is None:
            raise UserError("Search, then choose the result you want to rate.")
        query, _ = clean_query(query)
        votes = self.feedback_log(loaded.name)
        try:
            votes.record(query, self.item_reference(loaded.name, hit), label, index=loaded.name,
                        model=loaded.index.manifest.model_fingerprint, score=round(float(hit.score), 4))
        except ValueError as e:
            raise UserError(str(e)) from None
        counts = votes.counts()
        return (f"Saved 👍 for this result of “{query}”." if label == "up" else
                f"Saved 👎 for this result of “{query}”.") + \
            f" {loaded.name} has {counts['up']} 👍 and {counts['down']} 👎 on {counts['queries']} queries."

    def queries_upload_text(self, path) -> str:
        """The text of an uploaded queries file (.tsv/.jsonl, small, UTF-8: :func:`mmssl.app.guard.check_queries_file`).

        Raises:
            UserError: another file type, too big, or not UTF-8 (the message says which).
        """
        from mmssl.app.guard import QueriesFileRefused, check_queries_file

        path = getattr(path, "name", path)  # a tempfile wrapper or a path
        try:
            return check_queries_file(path)
        except QueriesFileRefused as e:
            raise UserError(str(e)) from None
        except OSError as e:
            raise UserError(f"The uploaded file could not be read ({e.strerror}); upload it again.") from None

    def evaluate_own_queries(self, name: str, text: str | None = None, baselines: bool = True) -> dict:
        """The index's model and baselines on the user's queries (:mod:`mmssl.index.user_eval`): the
        pasted or uploaded ``text`` of a queries file, or (``text`` None or blank) the index's feedback.

        Raises:
            UserError: no such index, no queries, a line that does not parse, an expected item not in it.
        """
        from mmssl.eval.user_queries import ExpectedItemError, QueriesFileError, parse_user_queries
        from mmssl.index.user_eval import evaluate_index_queries

        loaded = self.indexes.get(name or "")
        if loaded is None:
            raise UserError(f"Choose a loaded index to evaluate (one of: {', '.join(self.indexes) or 'none'}).")
        label = "your queries"
        if text is None or not text.strip():
            path = self.feedback_log(loaded.name).path
            if not path.is_file():
                raise UserError(f"{loaded.name} has no feedback yet: rate some results with 👍/👎, or paste "
                                "queries (query<TAB>expected) here.")
            text, label = path.read_text(encoding="utf-8"), path.name
        try:
            queries, info = parse_user_queries(text, label)
            with loaded.lock:
                results = evaluate_index_queries(loaded.index, loaded.model, queries, baselines=baselines,
                                                 index_name=loaded.name)
        except (QueriesFileError, ExpectedItemError) as e:
            raise UserError(str(e)) from None
        if info["no_positive"]:
            results["notes"].append(f"{info['no_positive']} queries left out: every vote on them is down")
        return results

    # ------------------------------------------------------------------ retraining from the UI

    def _retrain_plan(self, name: str | None, new_name: str, steps) -> object:
        """The checked :class:`~mmssl.app.retrain.RetrainPlan` (see :meth:`start_retrain`)."""
        from mmssl.app.feedback import FeedbackLog, feedback_path
        from mmssl.app.retrain import RetrainPlan

        if not self.allowed_build_folders:
            raise UserError("Retraining from the app is off: start the app with --allow-folder PATH to turn building "
                            "on. From a shell: `python -m mmssl train clip --data feedback:INDEX` (code: `train code`), "
                            "then `python -m mmssl index build NEW --model NEW_MODEL ...`.")
        if any(r.job.state in ("queued", "running") for r in self.retrains):
            raise UserError("A retrain is already running; wait for it to finish (progress below).")
        loaded = self.indexes.get(name or "")
        if loaded is None:
            raise UserError(f"Choose a loaded index to retrain (one of: {', '.join(self.indexes) or 'none'}).")
        new_name = (new_name or "").strip()
        if not INDEX_NAME.fullmatch(new_name):
            raise UserError("Name the new index: lowercase letters, digits, - and _ (up to 64), e.g. "
                            f"{loaded.name}-v2.")
        if new_name in self.indexes or new_name in self.problems or index_folder(new_name).exists():
            raise UserError(f"There is already an index named {new_name!r}; retraining never replaces one: choose "
                            "a new name.")
        try:
            steps = int(steps)
        except (TypeError, ValueError):
            steps = 0
        if not 1 <= steps <= MAX_RETRAIN_STEPS:
            raise UserError(f"The training steps must be a whole number from 1 to {MAX_RETRAIN_STEPS}.")
        start = Path(str(loaded.model.path))
        if not (start / "config.json").is_file():
            raise UserError(f"{loaded.name}'s model ({start}) is not one mmssl trained (an outside model cannot be "
                            "fine-tuned here); index with models/clip-default or models/code-default first.")
        new_model = start.parent / f"{start.name}-{new_name}"
        if new_model.exists():
            raise UserError(f"A model folder {new_model} exists already; choose another name for the new index.")
        if not FeedbackLog(feedback_path(loaded.index.folder)).counts()["up"]:
            raise UserError(f"{loaded.name} has no 👍 votes yet: rate good results of your searches with 👍 first "
                            "(a share of the voted queries is held out to measure the new model).")
        return RetrainPlan(loaded.name, Path(loaded.index.folder), new_name, start, new_model, steps,
                           kind=loaded.kind)

    def start_retrain(self, name: str | None, new_name: str, steps=50):
        """Fine-tune ``name``'s model on its 👍 votes, index its items with the new model as ``new_name``
        and compare both on the held-out votes, in a background job; returns the
        :class:`~mmssl.app.retrain.Retrain` (its ``job`` has the progress, ``comparison`` the result).
        The new index is loaded (searchable) when it is built; the old model and index stay.

        Raises:
            UserError: building is off, a retrain runs, an unknown index, a taken or bad new name, bad
                steps, an outside model, or no 👍 votes.
        """
        from mmssl.app.retrain import Retrain

        retrain = Retrain(self._retrain_plan(name, new_name, steps), on_indexed=self._load_retrained)
        self.retrains.append(retrain)
        retrain.runner(log=log.info).start()
        return retrain

    def _load_retrained(self, plan) -> None:
        """Load a retrained model and the index built with it (searchable from now on)."""
        from mmssl.model import load_model

        self._retrained_models[str(plan.new_model)] = load_model(plan.new_model)
        if self.open_index(plan.new_index) is None:
            raise RuntimeError(self.problems.get(plan.new_index, f"{plan.new_index} could not be loaded"))

    def latest_retrain(self):
        """The last retrain started from the Indexes tab, or None."""
        return self.retrains[-1] if self.retrains else None


MAX_RETRAIN_STEPS = 1000


@dataclass
class UnreadableUpload:
    """Stands in for an upload that is not a decodable image, so the handler can say so kindly."""

    message: str

def _day_and_time(iso: str) -> str:
    """``2026-11-29T05:48:12+00:00`` -> ``2026-11-29 05:48 UTC``."""
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def short_reason(error: Exception, limit: int = 500) -> str:
    """An error's message without the server-side paths in it (whole: only a runaway message is cut, at a word)."""
    text = re.sub(r"(/[^\s:]+)+", "<file>", str(error))
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"

