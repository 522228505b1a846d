"""The ``audio.analyze`` job: turn-taking metrics from a stored call's recording, kept as scores.

A call that lands in the store with a recording in our blob store gets this job (:func:`plan_audio_analysis`).
The handler reads the call back, picks the recording that tells the parties apart (a multi-channel file whose
channel map names user and agent, or a pair of mono files, one per party), runs
:func:`~convoscope.audio.report.analyze_audio` on it with the call's turns as the transcript (so vendor
per-turn latency is compared with the audio-truth gap), and stores every result with ``insert_scores``. A
recording whose parties cannot be told apart (mono, channel map unknown) gets the "not scorable" results,
never a guess. A recording that cannot be read fails the job, whose error is shown on the call; other calls'
jobs go on.

Parameters come in three layers, each overriding the one before: the defaults, the project's settings
(``settings["audio"]["params"]``, the same ``name: value`` overrides the CLI takes), and the job's own
parameters (a re-analysis). :class:`ReanalysisRequest` selects stored calls for a re-analysis; the
``POST /api/v1/jobs/audio.analyze`` route (in the server's API) and
``convoscope audio reanalyze`` both go through :func:`queue_reanalysis`. Results are written with a new
``evaluated_at``, so they replace the old ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..errors import AudioFormatError, InputError, NotFound
from ..model import Call, MetricResult, Recording, Role
from ..runtime.context import JobContext
from ..runtime.kinds import AUDIO_ANALYZE
from ..runtime.params import Timestamp
from ..runtime.targets import failed_jobs, selected_calls
from ..store.base import CallStore
from ..store.blobs import BlobStore
from ..store.metadata import Job, JobSpec, MetadataStore

if TYPE_CHECKING:
    from ..audio.report import AnalysisParams
    from ..audio.vad import SileroBackend

__all__ = [
    "AUDIO_ANALYZE",
    "PROJECT_PARAMS_PATH",
    "AudioAnalysisJob",
    "ReanalysisRequest",
    "analysis_params",
    "analyze_call",
    "failures",
    "plan_audio_analysis",
    "queue_reanalysis",
]

PROJECT_PARAMS_PATH = ("audio", "params")
"""Where a project's own analysis parameter overrides live in its settings document."""

_BLOB_PREFIX = "blob:"

ReadBlob = Callable[[str], bytes]


def _stored(recording: Recording) -> bool:
    return bool(recording.uri and recording.uri.startswith(_BLOB_PREFIX))


def plan_audio_analysis(project_id: str, call: Call) -> list[JobSpec]:
    """The follow-up of a stored call: one analysis when it has a recording in our blob store."""
    if call.id is None or not any(_stored(r) for r in call.recordings):
        return []
    return [JobSpec(kind=AUDIO_ANALYZE, call_id=call.id)]


@dataclass(frozen=True)
class _Choice:
    """The recording(s) to analyse and the role of each channel (or, for a pair, of each file)."""

    first: Recording
    second: Recording | None
    roles: list[Role]


_PARTIES = frozenset({Role.USER, Role.AGENT})


def _choose(call: Call) -> _Choice | str:
    """The recording that tells the parties apart, or why none does (the not-scorable reason)."""
    stored = [r for r in call.recordings if _stored(r)]
    if not stored:
        raise NotFound(f"call {call.id} has no recording stored here")
    for recording in stored:
        mapping = recording.channel_map
        channels = recording.channels or len(mapping)
        if channels >= 2 and len(mapping) == channels and set(mapping.values()) >= _PARTIES:
            return _Choice(recording, None, [mapping[c] for c in sorted(mapping)])
    by_role = {
        next(iter(r.channel_map.values())): r for r in stored if r.channels == 1 and len(r.channel_map) == 1
    }
    if set(by_role) >= _PARTIES:
        user, agent = by_role[Role.USER], by_role[Role.AGENT]
        if user.offset_s != agent.offset_s:
            raise AudioFormatError(
                f"call {call.id}: the user and agent recordings have different clock offsets "
                f"({user.offset_s} s and {agent.offset_s} s); a mono pair must share one clock"
            )
        return _Choice(user, agent, [Role.USER, Role.AGENT])
    first = stored[0]
    if (first.channels or 0) == 1:
        return "mono recording: one mixed track, not scorable for overlap metrics"
    return "channel map unknown or not naming both user and agent: not scorable for overlap metrics"


def analyze_call(
    call: Call,
    read_blob: ReadBlob,
    *,
    params: AnalysisParams,
    detector: SileroBackend | None = None,
) -> list[MetricResult]:
    """Every turn-taking result of a stored call, from its recording (``read_blob`` gives blob bytes).

    Raises :class:`AudioFormatError` naming the recording when it cannot be read or does not match its
    description, and :class:`NotFound` when the call has no stored recording or its blob is missing.
    """
    from ..audio.load import load_recording
    from ..audio.metrics import not_scorable
    from ..audio.report import analyze_audio

    if call.id is None:
        raise InputError("only a stored call (with an id) can be analysed")
    choice = _choose(call)
    if isinstance(choice, str):
        return not_scorable(choice, call_id=call.id, params=params.turn_taking)
    data = [read_blob(_sha(r)) for r in (choice.first, choice.second) if r is not None]
    try:
        audio = load_recording(
            data[0],
            second=data[1] if len(data) == 2 else None,
            channel_map=choice.roles,
            offset_s=choice.first.offset_s,
        )
    except AudioFormatError as exc:
        raise AudioFormatError(f"recording {choice.first.uri}: {exc}") from None
    use_detector = (
        detector
        if params.vad.backend == "silero"
        and detector is not None
        and detector.state_reset_s == params.vad.state_reset_s
        else None
    )
    analysis = analyze_audio(
        audio,
        call_id=call.id,
        params=params,
        transcript=call if call.turns else None,
        detector=use_detector,
    )
    return analysis.metrics


def _sha(recording: Recording) -> str:
    return (recording.uri or "").removeprefix(_BLOB_PREFIX)


def _project_overrides(meta: MetadataStore, project_id: str) -> Mapping[str, Any]:
    node: Any = meta.project_settings(project_id)
    for part in PROJECT_PARAMS_PATH:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def analysis_params(meta: MetadataStore, project_id: str, overrides: Mapping[str, Any]) -> AnalysisParams:
    """Defaults, then the project's settings, then ``overrides`` (a job's or a request's)."""
    from ..audio.report import AnalysisParams

    return AnalysisParams().with_overrides(_project_overrides(meta, project_id)).with_overrides(overrides)


class AudioAnalysisJob:
    """The ``audio.analyze`` handler; keeps one silero instance across jobs (its model loads once).

    The audio stack (numpy, soxr, onnxruntime) loads with the first job, not with the server: start-up
    does not wait for it.
    """

    def __init__(self, *, store: CallStore, blobs: BlobStore, meta: MetadataStore) -> None:
        self._store = store
        self._blobs = blobs
        self._meta = meta
        self._silero: SileroBackend | None = None

    @classmethod
    def of(cls, context: JobContext) -> AudioAnalysisJob:
        """The handler over the job context's stores."""
        return cls(store=context.store, blobs=context.blobs, meta=context.meta)

    def __call__(self, job: Job) -> None:
        """Analyse the job's call and store every result; failures raise (the runner records them)."""
        stored = self._store.get_call(job.project_id, job.call_id)
        if stored is None:
            raise NotFound(f"call {job.call_id} not found")
        params = analysis_params(self._meta, job.project_id, job.params)
        if self._silero is None:
            from ..audio.vad import SileroBackend

            self._silero = SileroBackend()
        results = analyze_call(stored.call, self._blobs.read, params=params, detector=self._silero)
        self._store.insert_scores(job.project_id, results)


class ReanalysisRequest(BaseModel):
    """Which stored calls to analyse again, and with which parameter overrides.

    ``call_ids`` picks calls by id (each must exist); otherwise ``since`` and ``agent_id`` filter the
    project's calls that have a recording. ``params`` are ``name: value`` overrides (``long_silence_s``,
    ``vad.threshold``, ``backend``...), applied over the project's settings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: Timestamp | None = None
    agent_id: str | None = None
    call_ids: list[str] = Field(default_factory=list, max_length=10_000)
    params: dict[str, JsonValue] = Field(default_factory=dict)


def queue_reanalysis(
    store: CallStore, meta: MetadataStore, project_id: str, request: ReanalysisRequest
) -> list[str]:
    """Queue ``audio.analyze`` for the selected calls with the request's parameters; returns their ids.

    The overrides are checked first, so an unknown name or a bad value queues nothing.
    """
    analysis_params(meta, project_id, request.params)
    call_ids = selected_calls(store, project_id, request, has_recording=True)
    meta.enqueue_jobs(
        project_id, [JobSpec(kind=AUDIO_ANALYZE, call_id=c, params=dict(request.params)) for c in call_ids]
    )
    return call_ids


def failures(meta: MetadataStore, project_id: str, call_ids: Iterable[str]) -> list[tuple[str, str]]:
    """The selected calls whose analysis job failed, with the error."""
    return failed_jobs(meta, project_id, call_ids, AUDIO_ANALYZE)
