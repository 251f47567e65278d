"""``fer-agent batch``: recorded lectures analysed on a Dask cluster, each into one session.

The recordings (videos, and folders of screenshots) are cut into chunks of video time. Each chunk is a task on a Dask
worker (:func:`analyse_chunk`), which runs the same stages as ``fer-agent start --source VIDEO`` (face finding,
crops, the emotion model, names with ``--names``) with its models loaded once per worker process and kept for every
later chunk. The driver (this process) keeps each finished chunk in a cache folder on disk, and when every chunk of a
recording is there it writes the recording's session from them in video order through the same recorder as
``start`` (:class:`fer_agent.session.Recorder`): the tracker runs over the whole recording, so participants keep their
identity across the chunks' boundaries. A killed batch loses only the chunks in flight: a re-run takes the cached
chunks, skips the recordings whose session is written (same content sha256, same settings), and replaces a session
that a killed run left unfinished.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import json
import logging
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from fer_agent import installed_version
from fer_agent.capture.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ImageSource, VideoSource
from fer_agent.checksum import sha256_of
from fer_agent.clock import clock
from fer_agent.errors import FerAgentError, StoreError
from fer_agent.paths import model_test_accuracy
from fer_agent.session import Recorder
from fer_agent.store.central import analysed as central_analysed
from fer_agent.store.central import is_central
from fer_agent.store.central import purge as central_purge
from fer_agent.store.central import sync as central_sync
from fer_agent.store.writer import Store
from fer_agent.types import FrameAnalysis, SkippedFile
from fer_agent.vision.analysis import Analyzer
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model, resolve_text_models

log = logging.getLogger(__name__)

# Video time per chunk, by default: a 90-minute lecture is 9 tasks, enough to spread one lecture over a few workers,
# few enough that each task's start (a discovery over the first frame) is a small share of its work.
CHUNK_SECONDS = 600.0
LIST_SUFFIXES = (".txt", ".list", ".lst")


class BatchError(FerAgentError):
    """A batch that cannot start: no recordings, an unreachable cluster."""


@dataclass(frozen=True)
class Settings:
    """What decides a recording's rows: the sampling rate, the models, and whether names are read. Model paths are
    the ones given on the command line (None: each worker resolves its cached or fetched model)."""

    fps: float = 1.0
    emotion_model: str = ""
    detector_model: str | None = None
    discovery_model: str | None = None
    names: bool = False
    text_detector_model: str | None = None
    text_recognizer_model: str | None = None
    no_face_seconds: float = 120.0

    def key(self) -> str:
        """The settings as stored with each session: the rate, whether names are read, and each model's sha256
        (resolved here, as the workers resolve them), so that another model file means another analysis."""
        models = {"emotion": Path(self.emotion_model),
                  "detector": resolve_detector_model(self.detector_model),
                  "discovery": resolve_discovery_model(self.discovery_model)}
        if self.names:
            models["text_detector"], models["text_recognizer"] = resolve_text_models(self.text_detector_model,
                                                                                    self.text_recognizer_model)
        return json.dumps({"fps": self.fps, "names": self.names, "no_face_seconds": self.no_face_seconds,
                           "models": {role: sha256_of(path) for role, path in models.items()}}, sort_keys=True)


@dataclass(frozen=True)
class Recording:
    """A video, or a folder of screenshots, to analyse into one session."""

    path: Path
    kind: str
    duration: float

    @property
    def name(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Chunk:
    recording: Recording
    index: int
    start: float
    end: float | None

    @property
    def seconds(self) -> float:
        return (self.recording.duration if self.end is None else self.end) - self.start


@dataclass
class ChunkResult:
    """What a worker sends back for a chunk: each frame's analysis (without its pixels) and the wall time it took,
    the files it skipped, and which worker process and analyzer did it."""

    frames: list[tuple[FrameAnalysis, float]]
    skipped: list[SkippedFile]
    model_version: str
    detector: str
    worker: str
    analyzer: int
    error: str | None = None


@dataclass
class Outcome:
    """How a recording ended in this batch: ``analysed``, ``already analysed`` or ``failed``."""

    recording: Recording | None
    name: str
    status: str
    session_id: int | None = None
    frames: int = 0
    participants: int = 0
    message: str = ""
    chunks_reused: int = 0


@dataclass
class BatchSummary:
    """The batch's outcome per recording; its wall time, the seconds of video it analysed, its workers, and the
    analyzers (worker process, analyzer) that did the work."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    video_seconds: float = 0.0
    workers: int = 0
    analyzers: set[tuple[str, int]] = field(default_factory=set)

    def __rich__(self) -> Group:
        """The table ``fer-agent batch`` prints at the end, and a line of totals."""
        table = Table("recording", "length", "result", "session", "frames", "participants", title="fer-agent batch")
        table.columns[0].overflow = "fold"
        notes = []
        for outcome in self.outcomes:
            length = clock(outcome.recording.duration) if outcome.recording else ""
            table.add_row(escape(outcome.name), length, outcome.status,
                          str(outcome.session_id) if outcome.session_id else "",
                          str(outcome.frames) if outcome.frames else "",
                          str(outcome.participants) if outcome.participants else "")
            if outcome.message:
                notes.append(f"{outcome.status}: {escape(outcome.message)}")
            elif outcome.chunks_reused:
                notes.append(f"{escape(outcome.name)}: {outcome.chunks_reused} chunks taken from an earlier run")
        counts = {status: sum(outcome.status == status for outcome in self.outcomes)
                  for status in ("analysed", "already analysed", "failed")}
        totals = ", ".join(f"{count} {status}" for status, count in counts.items())
        if self.video_seconds and self.seconds:
            totals += (f"; {self.video_seconds / 3600:.2f} h of video in {clock(self.seconds)} "
                       f"({self.video_seconds / self.seconds:.1f} h of video per hour) on {self.workers} workers")
        return Group(table, *notes, totals)


def find_recordings(paths: Iterable[str], fps: float = 1.0) -> tuple[list[Recording], list[Outcome]]:
    """The recordings that ``paths`` name: video files; folders, searched recursively for videos and for folders of
    screenshots (a folder with images in it is one recording); list files (.txt, .list, .lst: one path per line,
    relative to the list's folder; # starts a comment); and glob patterns (``**`` recursive). What cannot be read is
    an outcome of its own (failed, with the reason), so one bad file does not stop the others."""
    recordings: list[Recording] = []
    failures: list[Outcome] = []
    seen: set[Path] = set()

    def add(path: Path, kind: str) -> None:
        real = path.resolve()
        if real in seen:
            return
        seen.add(real)
        try:
            recordings.append(_measure(path, kind, fps))
        except FerAgentError as error:
            failures.append(Outcome(None, str(path), "failed", message=str(error)))

    def visit(text: str, base: Path | None = None) -> None:
        path = Path(text) if base is None or Path(text).is_absolute() else base / text
        if path.is_dir():
            for folder, folders, files in os.walk(path):
                folders.sort()
                names = sorted(files)
                if any(Path(name).suffix.lower() in IMAGE_SUFFIXES for name in names):
                    add(Path(folder), "screenshots")
                for name in names:
                    if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                        add(Path(folder) / name, "video")
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = line.split("#", 1)[0].strip()
                if entry:
                    visit(entry, path.parent)
        elif path.is_file():
            add(path, "screenshots" if path.suffix.lower() in IMAGE_SUFFIXES else "video")
        elif glob.has_magic(str(path)):
            matches = sorted(glob.glob(str(path), recursive=True))
            if not matches:
                failures.append(Outcome(None, str(path), "failed", message="no file matches this pattern"))
            for match in matches:
                visit(match)
        else:
            failures.append(Outcome(None, str(path), "failed", message="no such file or folder"))

    for text in paths:
        visit(text)
    return recordings, failures


def _measure(path: Path, kind: str, fps: float) -> Recording:
    """The recording's length in seconds (a folder of screenshots: one image per 1/fps)."""
    if kind == "screenshots":
        return Recording(path, kind, ImageSource(path).expected_frames() / fps)
    video = VideoSource(path)
    try:
        if video.duration is None:
            raise BatchError(f"{path}: the video does not say how long it is; analyse it with fer-agent start "
                             "--source")
        return Recording(path, kind, video.duration)
    finally:
        video.close()


def content_sha256(recording: Recording) -> str:
    """The sha256 of a video file, or of a folder of screenshots (its images' names and sha256s, in order)."""
    if recording.kind == "video":
        return sha256_of(recording.path)
    digest = hashlib.sha256()
    for path in ImageSource(recording.path).paths:
        digest.update(f"{path.name}\0{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def plan_chunks(recording: Recording, fps: float, chunk_seconds: float) -> list[Chunk]:
    """A video cut at multiples of the sampling interval, about ``chunk_seconds`` each (the last may be longer
    rather than a sliver); a folder of screenshots is one chunk."""
    if recording.kind != "video" or recording.duration <= chunk_seconds * 1.5:
        return [Chunk(recording, 0, 0.0, None)]
    intervals = max(round(chunk_seconds * fps), 1)
    step = intervals / fps
    count = max(int(recording.duration // step), 1)
    if recording.duration - count * step < step / 2:
        count = max(count - 1, 1)
    starts = [index * intervals / fps for index in range(count + 1)]
    return [Chunk(recording, index, start, starts[index + 1] if index + 1 < len(starts) else None)
            for index, start in enumerate(starts)]


# Each worker thread's analyzers (a Dask worker may run several threads; an analyzer follows one chunk at a time),
# and every analyzer of this process, closed at its exit.
_local = threading.local()
_every_analyzer: list[Analyzer] = []


def _close_analyzers() -> None:
    for analyzer in _every_analyzer:
        analyzer.close()


def _analyzer_for(settings: Settings) -> Analyzer:
    """This worker thread's analyzer for these settings, loaded on its first chunk and kept for the next ones."""
    analyzers: dict[Settings, Analyzer] = getattr(_local, "analyzers", None) or {}
    _local.analyzers = analyzers
    if settings not in analyzers:
        if not _every_analyzer:
            # Closed before the worker's interpreter goes, while MediaPipe can still close its graphs.
            atexit.register(_close_analyzers)
        analyzers[settings] = Analyzer.from_options(
            settings.detector_model, settings.discovery_model, settings.emotion_model, threads=1,
            names=settings.names, text_models=(settings.text_detector_model, settings.text_recognizer_model))
        _every_analyzer.append(analyzers[settings])
    return analyzers[settings]


def analyse_chunk(chunk: Chunk, settings: Settings) -> ChunkResult:
    """Run on a worker: every sampled frame of the chunk through the analyzer, from a fresh start (no place
    followed); the frames come back without their pixels. A recording that cannot be read ends the result with the
    error, after the frames read before it."""
    analyzer = _analyzer_for(settings)
    analyzer.start_over()
    recording = chunk.recording
    if recording.kind == "video":
        source: VideoSource | ImageSource = VideoSource(recording.path, settings.fps, chunk.start, chunk.end)
    else:
        source = ImageSource(recording.path, settings.fps)
    frames: list[tuple[FrameAnalysis, float]] = []
    error = None
    try:
        for frame in source.frames():
            started = time.perf_counter()
            analysis = analyzer.analyze(frame)
            elapsed = (time.perf_counter() - started) * 1000
            pixelless = replace(frame, image=np.zeros((1, 1, 3), np.uint8))
            frames.append((replace(analysis, frame=pixelless), elapsed))
    except FerAgentError as failure:
        error = str(failure)
    finally:
        source.close()
    return ChunkResult(frames, source.take_skipped(), analyzer.classifier.contract.version,
                       f"{analyzer.discovery.model_path.name} + {analyzer.detector.model_path.name}",
                       f"{os.uname().nodename}:{os.getpid()}", id(analyzer), error)


class ChunkCache:
    """Finished chunks on disk, one file each, under a folder per recording and settings: what a killed batch keeps.
    Written atomically (a temporary file renamed), so a kill never leaves half a chunk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, recording_key: str, index: int) -> Path:
        return self.folder / recording_key / f"chunk-{index:05d}.pickle"

    def has(self, recording_key: str, index: int) -> bool:
        return self._path(recording_key, index).is_file()

    def put(self, recording_key: str, index: int, result: ChunkResult) -> None:
        path = self._path(recording_key, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)

    def get(self, recording_key: str, index: int) -> ChunkResult:
        with open(self._path(recording_key, index), "rb") as handle:
            return pickle.load(handle)

    def drop(self, recording_key: str) -> None:
        shutil.rmtree(self.folder / recording_key, ignore_errors=True)


def default_cache() -> Path:
    return Path(platformdirs.user_cache_dir("fer-agent")) / "batch"


def _recording_key(sha256: str, settings_key: str, chunk_seconds: float) -> str:
    """The cache folder of a recording's chunks: its content, the settings, the chunk length (the chunks' times) and
    this fer-agent's version."""
    text = f"{sha256}\0{settings_key}\0{chunk_seconds!r}\0{installed_version()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def write_session(store: Store, recording: Recording, sha256: str, settings: Settings, settings_key: str,
                  results: Iterable[ChunkResult]) -> Outcome:
    """The recording's session from its chunks' results, in video order, through the recorder ``start`` uses;
    a chunk that ended with an error ends the session there, as failed."""
    recorder: Recorder | None = None
    session_id = 0
    error = None
    places: dict[tuple[int, int], int] = {}
    try:
        for index, result in enumerate(results):
            if result.error:
                error = result.error if result.error.startswith(recording.name) else f"{recording.name}: " \
                                                                                     f"{result.error}"
            if recorder is None:
                if not result.frames:
                    break
                session_id = store.start_session(recording.name, settings.fps, result.model_version,
                                                 model_test_accuracy(Path(settings.emotion_model)), result.detector,
                                                 sha256, settings_key)
                recorder = Recorder(store, session_id, settings.no_face_seconds)
            for skipped in result.skipped:
                recorder.skipped(skipped)
            for analysis, analysis_ms in result.frames:
                # Each chunk numbers its places from 1: they become the recording's own numbers.
                observations = [observation if observation.place is None else replace(
                    observation, place=places.setdefault((index, observation.place), len(places) + 1))
                    for observation in analysis.observations]
                recorder.record(replace(analysis, observations=observations), analysis_ms)
            if error:
                break
    except BaseException:
        # Stopped while writing (Ctrl-C, a full disk): no half session is left; the chunks stay in the cache.
        if recorder is not None:
            with contextlib.suppress(StoreError):
                store.purge([session_id])
        raise
    if recorder is None:
        raise BatchError(error or f"{recording.name}: nothing was analysed")
    status = "failed" if error else "finished"
    store.finish_session(session_id, status, error)
    return Outcome(recording, recording.name, "failed" if error else "analysed", session_id, recorder.frames,
                   len(recorder.tracker.participants), error or "")



@contextlib.contextmanager
def _client(cluster: str | None, workers: int | None) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``cluster``, or of a local cluster started here (``workers`` processes,
    one per core by default, each one thread), closed with it."""
    from distributed import Client, LocalCluster

    if cluster:
        try:
            client = Client(cluster, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise BatchError(f"cannot reach the Dask scheduler at {cluster} ({error}); start it with `dask scheduler` "
                             "and its workers with `dask worker ADDRESS --nthreads 1`, or leave out --cluster to run "
                             "here") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise BatchError(f"the Dask scheduler at {cluster} has no workers after a minute; start them with "
                                 f"`dask worker {cluster} --nthreads 1`") from None
            yield client
        return
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as local, Client(local) as client:
        yield client


@dataclass
class _Job:
    """A recording being analysed: its chunks, the results that have come back, and whether one failed."""

    order: int
    recording: Recording
    sha256: str
    key: str
    chunks: list[Chunk]
    done: set[int] = field(default_factory=set)
    errors: dict[int, ChunkResult] = field(default_factory=dict)
    reused: int = 0

    def needed(self) -> list[int]:
        """The chunks the session is written from: all, or those up to the first that failed."""
        last = min(self.errors) if self.errors else len(self.chunks) - 1
        return list(range(last + 1))

    def complete(self) -> bool:
        return all(index in self.done for index in self.needed())


def run_batch(paths: Iterable[str], settings: Settings, database: Path | str, *, cluster: str | None = None,
              workers: int | None = None, chunk_seconds: float = CHUNK_SECONDS, cache: Path | None = None,
              progress: Callable[[str, float, float, int, int], None] | None = None) -> BatchSummary:
    """Analyse every recording ``paths`` name into one session each in ``database``; see the module's text.
    ``progress(what, seconds done, seconds in all, recordings done, recordings in all)`` hears each step."""
    started = time.monotonic()
    recordings, failures = find_recordings(paths, settings.fps)
    if not recordings and not failures:
        raise BatchError("no recordings found (videos: " + ", ".join(VIDEO_SUFFIXES[:6]) + ", ...; or folders of "
                         "screenshots)")
    settings_key = settings.key()
    chunk_cache = ChunkCache(cache or default_cache())
    summary = BatchSummary(outcomes=list(failures))
    tell = progress or (lambda *_: None)
    central_url = str(database) if is_central(database) else None
    # A central database's sessions are written here first, then sent (``fer-agent sync``) and removed from here.
    staging = chunk_cache.folder / f"central-{hashlib.sha256(str(database).encode()).hexdigest()[:16]}.db"
    with Store(staging if central_url else database) as store:

        def send() -> dict[int, int]:
            """Send the staging database's written sessions (finished, or failed part-way) to the central one and
            remove them here; their central ids. A session a killed batch left half-written (now "interrupted") is
            removed without being sent: its recording is analysed again."""
            if central_url is None:
                return {}
            half = [row[0] for row in store.db.execute("SELECT id FROM sessions WHERE status = 'interrupted'")]
            if half:
                store.purge(half)
            sent = dict(central_sync(store.path, central_url).sent)
            if sent:
                store.purge(list(sent))
            return sent

        send()
        jobs: list[_Job] = []
        hashes: dict[str, str] = {}
        for order, recording in enumerate(recordings):
            tell(f"hashing {recording.path.name}", 0, 0, order, len(recordings))
            try:
                sha256 = content_sha256(recording)
            except OSError as error:
                summary.outcomes.append(Outcome(recording, recording.name, "failed",
                                                message=f"{recording.name}: cannot read it ({error.strerror})"))
                continue
            if sha256 in hashes:
                summary.outcomes.append(Outcome(recording, recording.name, "already analysed",
                                                message=f"the same content as {hashes[sha256]}"))
                continue
            hashes[sha256] = recording.name
            if central_url:
                finished, unfinished = central_analysed(central_url, sha256, settings_key)
            else:
                finished, unfinished = store.analysed(sha256, settings_key)
            if finished is not None:
                summary.outcomes.append(Outcome(recording, recording.name, "already analysed", finished))
                continue
            if unfinished:
                if central_url:
                    central_purge(central_url, unfinished)
                else:
                    store.purge(unfinished)
            key = _recording_key(sha256, settings_key, chunk_seconds)
            job = _Job(order, recording, sha256, key, plan_chunks(recording, settings.fps, chunk_seconds))
            job.done = {chunk.index for chunk in job.chunks if chunk_cache.has(key, chunk.index)}
            job.reused = len(job.done)
            jobs.append(job)
        total = sum(chunk.seconds for job in jobs for chunk in job.chunks)
        finished_seconds = sum(job.chunks[index].seconds for job in jobs for index in job.done)
        summary.video_seconds = total
        written = 0

        def write(job: _Job) -> None:
            nonlocal written
            results = (job.errors[index] if index in job.errors else chunk_cache.get(job.key, index)
                       for index in job.needed())
            try:
                outcome = write_session(store, job.recording, job.sha256, settings, settings_key, results)
            except BatchError as error:
                outcome = Outcome(job.recording, job.recording.name, "failed", message=str(error))
            outcome.chunks_reused = job.reused
            if central_url and outcome.session_id is not None:
                try:
                    outcome.session_id = send().get(outcome.session_id)
                except StoreError as error:
                    outcome.session_id = None
                    outcome.message = (f"analysed, but not sent yet ({error}); it waits in {store.path} and the next "
                                       "batch with this --db and --cache sends it")
            summary.outcomes.append(outcome)
            if outcome.status == "analysed":
                chunk_cache.drop(job.key)
            written += 1

        waiting = [job for job in jobs if not job.complete()]
        for job in jobs:
            if job.complete():
                write(job)
        if waiting:
            from distributed import as_completed

            with _client(cluster, workers) as client:
                summary.workers = len(client.scheduler_info().get("workers", {}))
                futures = {}
                for job in waiting:
                    for chunk in job.chunks:
                        if chunk.index not in job.done:
                            future = client.submit(analyse_chunk, chunk, settings, pure=False, priority=-job.order)
                            futures[future] = (job, chunk)
                tell("analysing", finished_seconds, total, written, len(jobs))
                for future in as_completed(list(futures)):
                    if future not in futures:
                        continue
                    job, chunk = futures.pop(future)
                    try:
                        result = future.result()
                    except Exception as error:  # a worker's bug, or a worker lost: the chunk fails, the batch goes on
                        result = ChunkResult([], [], "", "", "", 0, f"chunk {chunk.index + 1} of {len(job.chunks)}: "
                                             f"{type(error).__name__}: {error}")
                    summary.analyzers.add((result.worker, result.analyzer))
                    if result.error:
                        job.errors[chunk.index] = result
                        for other, (other_job, other_chunk) in list(futures.items()):
                            if other_job is job and other_chunk.index > chunk.index:
                                other.cancel()
                                futures.pop(other)
                    else:
                        chunk_cache.put(job.key, chunk.index, result)
                    job.done.add(chunk.index)
                    finished_seconds += chunk.seconds
                    if job.complete() and not any(other_job is job for other_job, _ in futures.values()):
                        write(job)
                    tell(f"analysing ({job.recording.path.name})", finished_seconds, total, written, len(jobs))
                summary.workers = max(summary.workers, len(client.scheduler_info().get("workers", {})))
    summary.seconds = time.monotonic() - started
    position = {recording.name: index for index, recording in enumerate(recordings)}
    summary.outcomes.sort(key=lambda outcome: position.get(outcome.name, -1))
    return summary
