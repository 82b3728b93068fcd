"""Background build jobs: the page serves at once while the missing indexes build behind it.

A :class:`BuildJob` is what one index needs (build its corpora, then each stage of a staged build);
its :class:`Step` s run on one worker thread, in the order of the runner's schedule, so the first
usable stage of every index comes before the rest of any (emoji images, then standard-library code,
then the libraries, then clipart). A step reports items done / total as it embeds; the job turns
that into a rate and an ETA for the Indexes tab and a one-line notice for the tab it affects.

    runner = JobRunner(jobs, schedule)
    runner.start()          # returns at once
    runner.rows()           # one dict per job for the Indexes tab
    runner.notice("code")   # "Code index: building libraries 12,288 / 41,595 (61 items/s, about 8 min left) ..."

A failed step is reported (its job stops, the others go on); nothing is raised into the page.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

# A step gets a reporter ``report(done, total)`` and returns a line for the log (or "").
StepFn = Callable[[Callable[[int, int | None], None]], str]


@dataclass
class Step:
    """One unit of a job: ``label`` is what users read ("standard library"); ``ready`` what becomes
    searchable when it ends ("" for a step that only prepares, like building a corpus)."""

    label: str
    run: StepFn
    ready: str = ""
    unit: str = "items"  # what done / total count ("steps" for a fine-tune)


@dataclass
class BuildJob:
    """The steps that make ``index`` complete, and where they stand."""

    index: str
    kind: str  # "image" or "code": the tab this index serves
    steps: list[Step]
    state: str = "queued"  # queued | running | done | failed
    current: str = ""
    done: int = 0
    total: int | None = None
    rate: float | None = None  # items/s of the current step
    searchable: str = ""  # the last stage that is in place
    message: str = ""
    unit: str = "items"  # of the current step
    _counting_since: float | None = field(default=None, repr=False)
    _counted_from: int = field(default=0, repr=False)

    def begin(self, step: Step) -> None:
        self.state, self.current, self.done, self.total, self.rate = "running", step.label, 0, None, None
        self.unit = step.unit
        self._counting_since, self._counted_from = None, 0

    def report(self, done: int, total: int | None) -> None:
        """Progress of the current step; the rate counts from the first report (chunks reused from an
        earlier run arrive at once and would make it meaningless, so a jump resets the clock)."""
        now = _now()
        if self._counting_since is None or done - self.done > 1024:
            self._counting_since, self._counted_from = now, done
        elif now > self._counting_since:
            self.rate = (done - self._counted_from) / (now - self._counting_since)
        self.done, self.total = done, total

    @property
    def eta_seconds(self) -> float | None:
        if not self.rate or self.total is None:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def row(self) -> dict:
        """Its row in the Indexes tab's table of background jobs."""
        return {"index": self.index, "tab": "Images" if self.kind == "image" else "Code",
                "searchable now": self.searchable or "nothing yet", "status": self.summary()}

    def summary(self) -> str:
        """``building libraries 12,288 / 41,595 (61 items/s, about 8 min left)``, or the state."""
        if self.state == "failed":
            return f"failed: {self.message}"
        if self.state == "done":
            return "complete"
        if self.state == "queued":
            return "waiting for the jobs before it"
        counts = f" {self.done:,} / {self.total:,}" if self.total else ""
        speed = f"{self.rate:,.0f} {self.unit}/s" if self.rate and self.rate >= 10 else \
            (f"{self.rate:.2g} {self.unit}/s" if self.rate else "")
        eta = self.eta_seconds
        left = f"about {_minutes(eta)} left" if eta is not None else ""
        extra = ", ".join(part for part in (speed, left) if part)
        return f"{self.current}{counts}" + (f" ({extra})" if extra else "")


def _now() -> float:
    return time.monotonic()


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class JobRunner:
    """Runs ``schedule`` (steps of ``jobs``, in that order) on one daemon thread.

    ``on_ready(job, step)`` runs after a step whose ``ready`` is set (the app reloads the index there);
    ``on_idle()`` once every step ran (the app returns to its serving thread count).
    """

    def __init__(self, jobs: list[BuildJob], schedule: list[tuple[BuildJob, Step]],
                 on_ready: Callable[[BuildJob, Step], None] | None = None,
                 on_idle: Callable[[], None] | None = None, log: Callable[[str], None] = print):
        self.jobs, self.schedule = jobs, schedule
        self.on_ready, self.on_idle, self.log = on_ready, on_idle, log
        self.thread: threading.Thread | None = None
        self.finished = threading.Event()

    def start(self) -> "JobRunner":
        self.thread = threading.Thread(target=self.run, name="mmssl-build-jobs", daemon=True)
        self.thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def run(self) -> None:
        """Run every step in this thread (``start`` runs this on a daemon thread)."""
        try:
            for job, step in self.schedule:
                if job.state != "failed":
                    self._run_step(job, step)
        finally:
            self.finished.set()
            if self.on_idle is not None:
                self.on_idle()

    def _run_step(self, job: BuildJob, step: Step) -> None:
        job.begin(step)
        start = time.perf_counter()
        try:
            line = step.run(job.report)
        except Exception as e:  # a job's failure is shown in the page, never raised into it
            job.state, job.message = "failed", f"{step.label}: {e}"
            self.log(f"indexes/{job.index}: {step.label} failed: {e}\n{traceback.format_exc(limit=3)}")
            return
        if line:
            self.log(f"indexes/{job.index}: {line} ({time.perf_counter() - start:.0f} s)")
        if step.ready:
            job.searchable = step.ready
            if self.on_ready is not None:
                self.on_ready(job, step)
        job.state = "done" if step is job.steps[-1] else "queued"

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def rows(self) -> list[dict]:
        """One row per job for the Indexes tab."""
        return [job.row() for job in self.jobs]

    def notice(self, kind: str) -> str:
        """A line for the Images or Code tab while one of its indexes builds ("" when none does)."""
        lines = []
        for job in self.jobs:
            if job.kind != kind or job.state == "done":
                continue
            now = f"searching {job.searchable} while it builds" if job.searchable else "not searchable yet"
            lines.append(f"Index {job.index} is building in the background: {job.summary()}; {now}. "
                         "Progress: Indexes tab.")
        return " ".join(lines)
