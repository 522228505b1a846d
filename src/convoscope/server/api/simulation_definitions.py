"""Simulation definitions kept by the server, and runs it executes: the same objects as the YAML files.

A team that keeps its scenarios, personas, suites and agents on the server (PUT one at a time, or import
the YAML files of ``convoscope simulate`` whole) can start a run over the API; the server holds the
conversations itself (:mod:`..simulation_runner`), stores every call like any other (so the evaluation
job scores them), keeps the run's result in ``simulation_runs`` while it runs and streams its progress
over a WebSocket.

Every body is validated by the model the YAML loader uses, so a definition the API accepts is one the
CLI accepts, and the reverse. Each kind has its own routes (not one route over a ``{kind}`` parameter),
so the OpenAPI document gives each its request and response schema. References are kept whole: a suite
naming a scenario or persona that is not kept (built-in personas count as kept) is refused, and so is
deleting a scenario or persona a kept suite names.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Path, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from starlette.concurrency import run_in_threadpool

from ...errors import InputError, NotFound, PayloadError
from ...model.bounds import integral
from ...simulate.definitions import BUILTIN_PERSONAS, SLUG_PATTERN, AgentSpec, Persona, Scenario, Slug, Suite
from ...simulate.loader import DefinitionError, load_text
from ...simulate.results import RUN_ID_PATTERN, RunStatus
from ...store.metadata import ProjectInfo
from ..auth import CurrentProject
from ..deps import get_services
from ..errors import error_body
from ..openapi import error_responses
from ..services import Services
from ..simulation_runner import MAX_CONCURRENCY, TooManyRuns

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/simulation", tags=["simulation definitions"])

_M = TypeVar("_M", bound=BaseModel)

IMPORT_FILE = "<body>"
"""The file name problems in an imported YAML body are reported against (``<body>:LINE``)."""
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml")
_SLUG_PATTERN = SLUG_PATTERN
_WS_UNAUTHORIZED = 4401
_WS_NOT_FOUND = 4404
"""WebSocket close codes for a missing key and an unknown run: the HTTP status plus 4000."""


def _id_path(kind: str) -> Any:
    return Path(min_length=1, max_length=128, pattern=_SLUG_PATTERN, description=f"The {kind}'s id.")


ScenarioId = Annotated[str, _id_path("scenario")]
PersonaId = Annotated[str, _id_path("persona")]
SuiteId = Annotated[str, _id_path("suite")]
AgentId = Annotated[str, _id_path("agent")]


# Bodies: the loader's models, with the id optional (the path names it) and the YAML ``kind`` allowed.


class ScenarioBody(Scenario):
    """A scenario as sent: ``id`` may be left out (the path names it), ``kind`` may be kept from YAML."""

    id: Slug | None = None  # type: ignore[assignment]
    kind: Literal["scenario"] | None = None


class PersonaBody(Persona):
    """A persona as sent: ``id`` may be left out (the path names it), ``kind`` may be kept from YAML."""

    id: Slug | None = None  # type: ignore[assignment]
    kind: Literal["persona"] | None = None


class SuiteBody(Suite):
    """A suite as sent: ``id`` may be left out (the path names it), ``kind`` may be kept from YAML."""

    id: Slug | None = None  # type: ignore[assignment]
    kind: Literal["suite"] | None = None


class AgentBody(AgentSpec):
    """An agent as sent: ``id`` may be left out (the path names it), ``kind`` may be kept from YAML."""

    id: Slug | None = None  # type: ignore[assignment]
    kind: Literal["agent"] | None = None


class ScenarioList(BaseModel):
    """The project's scenarios by id."""

    items: list[Scenario]


class PersonaList(BaseModel):
    """The project's personas by id, the built-in ones included (a kept persona replaces a built-in)."""

    items: list[Persona]


class SuiteList(BaseModel):
    """The project's suites by id."""

    items: list[Suite]


class AgentList(BaseModel):
    """The project's agents by id."""

    items: list[AgentSpec]


class ImportedDefinition(BaseModel):
    """One definition an import wrote."""

    kind: Literal["scenario", "persona", "suite", "agent"]
    id: str
    created: bool
    """False when it replaced a kept definition of the same kind and id."""


class ImportResult(BaseModel):
    """What an import wrote, in the order of the documents."""

    items: list[ImportedDefinition]


class StartRun(BaseModel):
    """Which suite to run against which agent, both kept in the project."""

    model_config = ConfigDict(extra="forbid")

    suite: Slug
    agent: Slug
    iterations: Annotated[int, Field(ge=1, le=10_000), Strict(), BeforeValidator(integral)] | None = None
    """Override the suite's iterations."""
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY), Strict(), BeforeValidator(integral)] = 32
    """Conversations in flight at once (each is a connection from the server to the agent)."""


class RunStarted(BaseModel):
    """A run the server now executes."""

    run_id: str
    status: RunStatus
    planned: int
    """How many conversations the run holds."""
    result: str
    """Where its result is read, while it runs and after (``GET``)."""
    progress: str
    """Its progress as a WebSocket (one message per stored conversation, then ``done``)."""


# Storage helpers ------------------------------------------------------------------------------------


def _conflict(message: str) -> JSONResponse:
    return JSONResponse(error_body("Conflict", message), status_code=409)


def _checked(model: type[_M], body: BaseModel, ident: str) -> _M:
    """The definition the body and the path name together: the body's id, if any, must be the path's."""
    data = body.model_dump(exclude={"kind"}, exclude_unset=True)
    given = data.get("id")
    if given is not None and given != ident:
        message = f"the body's id {given!r} is not the path's {ident!r} (leave it out, or make them equal)"
        raise PayloadError(message, [{"loc": "body.id", "msg": message}])
    return model.model_validate({**data, "id": ident})


async def _strictly(request: Request, body_model: type[_M]) -> _M:
    """The body read again without coercion: the YAML models are lenient (``yes`` is true there), but
    over JSON a value of the wrong type is a mistake, as the OpenAPI document says."""
    try:
        return body_model.model_validate_json(await request.body(), strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _missing_references(services: Services, project_id: str, suite: Suite) -> list[dict[str, object]]:
    """One problem per scenario or persona the suite names and the project does not keep."""
    scenarios = services.meta.definition_ids(project_id, "scenario")
    personas = services.meta.definition_ids(project_id, "persona") | set(BUILTIN_PERSONAS)
    problems: list[dict[str, object]] = []
    for field, names, known in (
        ("scenarios", suite.scenarios, scenarios),
        ("personas", suite.personas, personas),
    ):
        for index, name in enumerate(names):
            if name not in known:
                kind = field[:-1]
                problems.append(
                    {
                        "loc": f"body.{field}.{index}",
                        "msg": f"suite {suite.id!r} names unknown {kind} {name!r}",
                    }
                )
    return problems


def _suites_naming(services: Services, project_id: str, kind: str, ident: str) -> list[str]:
    """The kept suites that name this scenario or persona."""
    names = []
    for stored in services.meta.list_definitions(project_id, "suite"):
        listed = stored.body.get("scenarios" if kind == "scenario" else "personas")
        if listed is None and kind == "persona":
            listed = ["neutral"]  # the suite's default
        if isinstance(listed, list) and ident in listed:
            names.append(stored.id)
    return names


async def _put(
    request: Request,
    project: ProjectInfo,
    kind: str,
    model: type[_M],
    body: BaseModel,
    ident: str,
    response: Response,
) -> _M:
    definition = _checked(model, await _strictly(request, type(body)), ident)
    services = get_services(request)
    if isinstance(definition, Suite):
        problems = await run_in_threadpool(_missing_references, services, project.id, definition)
        if problems:
            raise PayloadError("; ".join(str(p["msg"]) for p in problems), problems)
    stored_body = definition.model_dump(mode="json", exclude_unset=True)
    (stored,) = await run_in_threadpool(
        services.meta.put_definitions, project.id, [(kind, ident, stored_body)]
    )
    if stored.created:
        response.status_code = 201
        response.headers["Location"] = f"{request.url.path}"
    return definition


async def _get(request: Request, project: ProjectInfo, kind: str, model: type[_M], ident: str) -> _M:
    stored = await run_in_threadpool(get_services(request).meta.get_definition, project.id, kind, ident)
    if stored is None:
        if kind == "persona" and ident in BUILTIN_PERSONAS:
            return cast(_M, BUILTIN_PERSONAS[ident])
        raise NotFound(f"{kind} {ident!r} not found")
    return model.model_validate(stored.body)


async def _list(request: Request, project: ProjectInfo, kind: str, model: type[_M]) -> list[_M]:
    rows = await run_in_threadpool(get_services(request).meta.list_definitions, project.id, kind)
    return [model.model_validate(row.body) for row in rows]


async def _delete(request: Request, project: ProjectInfo, kind: str, ident: str) -> Response:
    services = get_services(request)
    if kind in ("scenario", "persona"):
        users = await run_in_threadpool(_suites_naming, services, project.id, kind, ident)
        if users and (kind == "scenario" or ident not in BUILTIN_PERSONAS):
            return _conflict(f"{kind} {ident!r} is named by suite(s) {', '.join(map(repr, users))}")
    deleted = await run_in_threadpool(services.meta.delete_definition, project.id, kind, ident)
    if not deleted:
        built_in = (
            " (built in: only a kept persona of that id can be deleted)" if ident in BUILTIN_PERSONAS else ""
        )
        raise NotFound(f"{kind} {ident!r} not found{built_in}")
    return Response(status_code=204)


_DELETE_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(409)


# Scenarios --------------------------------------------------------------------------------------------


@router.put(
    "/scenarios/{scenario_id}",
    summary="Create or replace a scenario",
    responses={201: {"model": Scenario, "description": "Created."}},
)
async def put_scenario(
    request: Request, project: CurrentProject, scenario_id: ScenarioId, body: ScenarioBody, response: Response
) -> Scenario:
    """200 when it replaced a kept scenario, 201 when it is new."""
    return await _put(request, project, "scenario", Scenario, body, scenario_id, response)


@router.get("/scenarios", summary="List scenarios")
async def list_scenarios(request: Request, project: CurrentProject) -> ScenarioList:
    return ScenarioList(items=await _list(request, project, "scenario", Scenario))


@router.get("/scenarios/{scenario_id}", summary="A scenario")
async def get_scenario(request: Request, project: CurrentProject, scenario_id: ScenarioId) -> Scenario:
    return await _get(request, project, "scenario", Scenario, scenario_id)


@router.delete(
    "/scenarios/{scenario_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a scenario",
    responses=_DELETE_RESPONSES,
)
async def delete_scenario(request: Request, project: CurrentProject, scenario_id: ScenarioId) -> Response:
    """Refused (409) while a kept suite names it."""
    return await _delete(request, project, "scenario", scenario_id)


# Personas ---------------------------------------------------------------------------------------------


@router.put(
    "/personas/{persona_id}",
    summary="Create or replace a persona",
    responses={201: {"model": Persona, "description": "Created."}},
)
async def put_persona(
    request: Request, project: CurrentProject, persona_id: PersonaId, body: PersonaBody, response: Response
) -> Persona:
    """200 when it replaced a kept persona, 201 when it is new (a kept persona may replace a built-in)."""
    return await _put(request, project, "persona", Persona, body, persona_id, response)


@router.get("/personas", summary="List personas (built-in ones included)")
async def list_personas(request: Request, project: CurrentProject) -> PersonaList:
    kept = await _list(request, project, "persona", Persona)
    merged = {**BUILTIN_PERSONAS, **{persona.id: persona for persona in kept}}
    return PersonaList(items=[merged[ident] for ident in sorted(merged)])


@router.get("/personas/{persona_id}", summary="A persona (kept or built in)")
async def get_persona(request: Request, project: CurrentProject, persona_id: PersonaId) -> Persona:
    return await _get(request, project, "persona", Persona, persona_id)


@router.delete(
    "/personas/{persona_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a persona",
    responses=_DELETE_RESPONSES,
)
async def delete_persona(request: Request, project: CurrentProject, persona_id: PersonaId) -> Response:
    """Refused (409) while a kept suite names it, unless a built-in persona of that id takes its place."""
    return await _delete(request, project, "persona", persona_id)


# Suites -----------------------------------------------------------------------------------------------


@router.put(
    "/suites/{suite_id}",
    summary="Create or replace a suite",
    responses={201: {"model": Suite, "description": "Created."}},
)
async def put_suite(
    request: Request, project: CurrentProject, suite_id: SuiteId, body: SuiteBody, response: Response
) -> Suite:
    """Every scenario and persona it names must be kept (or be a built-in persona): else 422 naming it."""
    return await _put(request, project, "suite", Suite, body, suite_id, response)


@router.get("/suites", summary="List suites")
async def list_suites(request: Request, project: CurrentProject) -> SuiteList:
    return SuiteList(items=await _list(request, project, "suite", Suite))


@router.get("/suites/{suite_id}", summary="A suite")
async def get_suite(request: Request, project: CurrentProject, suite_id: SuiteId) -> Suite:
    return await _get(request, project, "suite", Suite, suite_id)


@router.delete("/suites/{suite_id}", status_code=204, response_class=Response, summary="Delete a suite")
async def delete_suite(request: Request, project: CurrentProject, suite_id: SuiteId) -> Response:
    return await _delete(request, project, "suite", suite_id)


# Agents -----------------------------------------------------------------------------------------------


@router.put(
    "/agents/{agent_id}",
    summary="Create or replace an agent under test",
    responses={201: {"model": AgentSpec, "description": "Created."}},
)
async def put_agent(
    request: Request, project: CurrentProject, agent_id: AgentId, body: AgentBody, response: Response
) -> AgentSpec:
    """The server connects to the agent's URL as written here when a run is started (see the docs)."""
    return await _put(request, project, "agent", AgentSpec, body, agent_id, response)


@router.get("/agents", summary="List agents under test")
async def list_agents(request: Request, project: CurrentProject) -> AgentList:
    return AgentList(items=await _list(request, project, "agent", AgentSpec))


@router.get("/agents/{agent_id}", summary="An agent under test")
async def get_agent(request: Request, project: CurrentProject, agent_id: AgentId) -> AgentSpec:
    return await _get(request, project, "agent", AgentSpec, agent_id)


@router.delete("/agents/{agent_id}", status_code=204, response_class=Response, summary="Delete an agent")
async def delete_agent(request: Request, project: CurrentProject, agent_id: AgentId) -> Response:
    return await _delete(request, project, "agent", agent_id)


# Import -----------------------------------------------------------------------------------------------

_YAML_BODY = {"schema": {"type": "string", "description": "YAML documents, each with its kind."}}


@router.post(
    "/definitions:import",
    summary="Import definitions from YAML",
    response_model=ImportResult,
    responses=error_responses(415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": _YAML_BODY, "text/yaml": _YAML_BODY},
        }
    },
)
async def import_definitions(request: Request, project: CurrentProject) -> ImportResult | Response:
    """The YAML files of ``convoscope simulate`` (any number of documents, each with its ``kind``),
    checked as the CLI checks them and written whole or not at all: every problem is answered (422)
    with its line as ``<body>:LINE``. A suite may name scenarios and personas of the body or kept ones.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in YAML_TYPES:
        return JSONResponse(
            error_body(
                "UnsupportedMediaType", f"send YAML ({', '.join(YAML_TYPES[:2])}), not {content_type!r}"
            ),
            status_code=415,
        )
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 text: {exc.reason}") from None
    services = get_services(request)
    scenarios = await run_in_threadpool(services.meta.definition_ids, project.id, "scenario")
    personas = await run_in_threadpool(services.meta.definition_ids, project.id, "persona")
    try:
        found = load_text(text, IMPORT_FILE, known_scenarios=scenarios, known_personas=personas)
    except DefinitionError as exc:
        details: list[dict[str, object]] = [
            {
                "loc": f"{problem.file}:{problem.line}" if problem.line is not None else problem.file,
                "field": problem.field,
                "msg": problem.message,
            }
            for problem in exc.problems
        ]
        raise PayloadError(str(exc), details) from None
    if not found:
        raise PayloadError("no definitions in the body (each YAML document needs a kind)")
    items = [
        (kind, str(definition.model_dump()["id"]), definition.model_dump(mode="json", exclude_unset=True))
        for kind, definition in found
    ]
    stored = await run_in_threadpool(services.meta.put_definitions, project.id, items)
    return ImportResult(
        items=[ImportedDefinition(kind=cast(Any, row.kind), id=row.id, created=row.created) for row in stored]
    )


# From a production call -------------------------------------------------------------------------------


class FromCallRequest(BaseModel):
    """Which stored call to turn into a scenario, and whether to keep what it became."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: Annotated[str, Field(min_length=1, max_length=200)]
    keep: Annotated[bool, Strict()] = True
    """Keep the scenario and its suite as definitions of the project (else only answer them)."""


class FromCallResult(BaseModel):
    """The scenario that replays the call, the suite that expects what its failed metrics demanded, and
    what could not be derived."""

    scenario: Scenario
    suite: Suite
    notes: list[str]
    inferred: bool
    """Whether the configured LLM inferred the caller's goal, instructions and facts."""
    kept: bool


@router.post(
    "/scenarios:from-call",
    summary="Turn a stored call into a scenario that replays it",
    responses=error_responses(404, 422),
)
async def scenario_from_call(
    request: Request, project: CurrentProject, body: FromCallRequest
) -> FromCallResult:
    """The caller's lines replayed (its goal inferred too when an LLM is configured), the call's tool
    results as mocks, and the metrics that failed as the suite's; a call with no caller turns is a 422."""
    from ...evals.llm import JudgeClient, JudgeConfig
    from ...simulate.from_call import derive_from_call

    services = get_services(request)
    stored = await run_in_threadpool(services.store.get_call, project.id, body.call_id)
    if stored is None:
        raise NotFound(f"call {body.call_id} not found")
    config = JudgeConfig.from_settings(services.settings)
    llm = JudgeClient(config) if config is not None else None
    try:
        made = await run_in_threadpool(derive_from_call, stored, llm=llm)
    except InputError as exc:  # no caller turns: nothing to replay
        raise PayloadError(str(exc)) from None
    finally:
        if llm is not None:
            llm.close()
    if body.keep:
        items = [
            ("scenario", made.scenario.id, made.scenario.model_dump(mode="json", exclude_unset=True)),
            ("suite", made.suite.id, made.suite.model_dump(mode="json", exclude_unset=True)),
        ]
        await run_in_threadpool(services.meta.put_definitions, project.id, items)
    return FromCallResult(
        scenario=made.scenario,
        suite=made.suite,
        notes=list(made.notes),
        inferred=made.inferred,
        kept=body.keep,
    )


# Runs -------------------------------------------------------------------------------------------------


@router.post(
    "/runs:start",
    status_code=202,
    response_model=RunStarted,
    summary="Start a run of a kept suite against a kept agent",
    responses=error_responses(404, 429),
)
async def start_run(
    request: Request, project: CurrentProject, body: StartRun, response: Response
) -> RunStarted | Response:
    """The server holds the conversations itself and answers at once (202): the result is kept from now
    on (``GET /simulation/runs/{run_id}``, ``status: running`` with the counts so far) and the progress
    streams over ``/simulation/runs/{run_id}/progress`` (WebSocket). An unknown suite or agent is 404; a
    suite naming a scenario or persona no longer kept, or a scenario whose caller cannot be had (no
    script and no LLM configured), is 422; 429 while the server already executes its most runs.
    """
    runner = get_services(request).simulations
    prepared = await run_in_threadpool(runner.prepare, project.id, body.suite, body.agent, body.iterations)
    try:
        run = await runner.start(project.id, prepared, concurrency=body.concurrency)
    except TooManyRuns as exc:
        return JSONResponse(error_body("TooManyRequests", str(exc)), status_code=429)
    result = f"/api/v1/simulation/runs/{run.run_id}"
    response.headers["Location"] = result
    return RunStarted(
        run_id=run.run_id,
        status=run.status,
        planned=run.planned,
        result=result,
        progress=f"{result}/progress",
    )


async def _project_of(websocket: WebSocket, services: Services) -> ProjectInfo | None:
    """The project of the Bearer key, else of ``?key=`` (browsers cannot set headers on a WebSocket)."""
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    key = key or websocket.query_params.get("key", "").strip()
    if not key:
        return None
    return await run_in_threadpool(services.meta.resolve_api_key, key)


@router.websocket("/runs/{run_id}/progress")
async def follow_run(websocket: WebSocket, run_id: str) -> None:
    """One JSON message per stored conversation (``type: conversation``, with its verdict and reasons),
    then ``{type: done, status, totals, error}`` and a normal close. A late follower first gets every
    message already sent. A missing or unknown key closes with 4401, an unknown run with 4404.
    """
    services = cast(Services, websocket.app.state.services)
    project = await _project_of(websocket, services)
    await websocket.accept()
    if project is None:
        await websocket.close(code=_WS_UNAUTHORIZED, reason="missing or unknown API key")
        return
    if re.fullmatch(RUN_ID_PATTERN, run_id) is None:
        await websocket.close(code=_WS_NOT_FOUND, reason=f"run {run_id} not found")
        return

    async def send_all() -> None:
        async for message in services.simulations.follow(project.id, run_id):
            await websocket.send_json(message)

    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    sender = asyncio.create_task(send_all())
    receiver = asyncio.create_task(until_disconnect())
    await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    receiver.cancel()
    if not sender.done():  # the follower went away
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        return
    try:
        sender.result()
    except NotFound as exc:
        await websocket.close(code=_WS_NOT_FOUND, reason=str(exc)[:120])
        return
    await websocket.close(code=1000)
