"""The judge client: structured JSON answers from any OpenAI-compatible ``/chat/completions`` endpoint.

Judge metrics must run against whatever the user has: OpenAI, a gateway, vLLM, Ollama, llama.cpp.
Those servers differ in what they support and in how they fail, so this client asks for JSON-schema
output and steps down to JSON mode, then to plain instructions, when a server rejects it; it always
parses tolerantly and validates the reply against the schema, so a reply that is not JSON or misses a
field becomes a clear :class:`JudgeReplyError` on that one result. Rate limits and server errors are
retried with exponential backoff (``Retry-After`` wins when the server sends it); a semaphore bounds the
requests in flight across every thread; answers are cached on disk by (model, messages, schema), so
re-evaluating an unchanged call costs nothing; every call reports its tokens and cost.

The rubric always travels in the system message and the transcript in a separate user message: the
transcript is data, and a caller saying "ignore your instructions" must stay a quote, not an order.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr

from ..config import Settings
from ..errors import JudgeError

__all__ = [
    "DEFAULT_OPENAI_BASE_URL",
    "JudgeClient",
    "JudgeConfig",
    "JudgeReply",
    "JudgeReplyError",
    "JudgeUsage",
    "OutputMode",
    "ResponseCache",
    "judge_from_settings",
    "parse_json_reply",
    "total_usage",
]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
"""Where a key without a base URL points, as OpenAI's own clients do."""

CACHE_FILE = "judge_cache.sqlite"
"""The response cache's file name inside the data directory."""

OutputMode = Literal["json_schema", "json_object", "prompt"]
"""How JSON is requested: a JSON schema, JSON mode, or only the instructions in the prompt."""

_FALLBACK: dict[OutputMode, OutputMode | None] = {
    "json_schema": "json_object",
    "json_object": "prompt",
    "prompt": None,
}
_REPLY_EXCERPT_CHARS = 200
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


class JudgeReplyError(JudgeError):
    """The endpoint answered, but not with the JSON the schema asks for (not JSON, a missing field)."""


class JudgeConfig(BaseModel):
    """Where the judge is and how hard to try.

    ``prices`` maps a model to USD per million (input, output) tokens; a model missing from it has its
    tokens recorded and its cost left unknown. ``max_retry_after_s`` caps how long a ``Retry-After`` may
    stall a request: a longer one fails the result instead of blocking a worker.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(min_length=1)
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    max_retry_after_s: float = Field(default=60.0, ge=0)
    max_tokens: int | None = Field(default=1024, ge=1)
    output_mode: OutputMode = "json_schema"
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    cache_path: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeConfig | None:
        """The configured judge, or None when no model is named or no endpoint is known.

        A model must be named explicitly: an ``OPENAI_API_KEY`` that happens to be in the environment
        must never, on its own, start sending transcripts to a provider.
        """
        key = settings.llm_api_key
        if not settings.llm_model or not (settings.llm_base_url or key):
            return None
        return cls(
            base_url=settings.llm_base_url or DEFAULT_OPENAI_BASE_URL,
            model=settings.llm_model,
            api_key=key,
            timeout_s=settings.llm_timeout_s,
            max_concurrency=settings.llm_max_concurrency,
            prices=dict(settings.llm_prices),
            cache_path=settings.data_dir / CACHE_FILE,
        )


@dataclass(frozen=True)
class JudgeUsage:
    """What one judge request cost; ``cost_usd`` is what was spent now (0 on a cache hit)."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    cached: bool
    attempts: int
    latency_s: float
    output_mode: OutputMode

    def as_evidence(self) -> dict[str, JsonValue]:
        """The usage as result evidence."""
        return dict(asdict(self))


@dataclass(frozen=True)
class JudgeReply:
    """A validated JSON object from the judge, with what it cost."""

    data: dict[str, Any]
    usage: JudgeUsage
    content: str


def total_usage(usages: Sequence[JudgeUsage]) -> dict[str, JsonValue]:
    """Judge requests summed, with each request's own usage under ``calls`` (k runs, claims then verdicts)."""

    def add(values: list[float | int | None]) -> float | int | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    return {
        "requests": len(usages),
        "cached": sum(1 for u in usages if u.cached),
        "models": list(sorted({u.model for u in usages})),
        "prompt_tokens": add([u.prompt_tokens for u in usages]),
        "completion_tokens": add([u.completion_tokens for u in usages]),
        "cost_usd": add([u.cost_usd for u in usages]),
        "latency_s": round(sum(u.latency_s for u in usages), 6),
        "calls": [usage.as_evidence() for usage in usages],
    }


# ----- parsing


def parse_json_reply(content: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object in a judge reply, validated against ``schema``.

    Tolerates what models wrap around JSON (code fences, a sentence before or after); anything that is
    still not one JSON object, or that misses or mistypes a field, raises :class:`JudgeReplyError`
    quoting the start of the reply.
    """
    text = _FENCE.sub("", content.strip())
    data: Any = None
    try:
        data = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                data = json.loads(text[start : end + 1])
            except ValueError:
                data = None
    if not isinstance(data, dict):
        raise JudgeReplyError(f"judge reply is not a JSON object: {_excerpt(content)!r}")
    problems = sorted(Draft202012Validator(dict(schema)).iter_errors(data), key=lambda e: list(e.path))
    if problems:
        described = "; ".join(
            f"{'/'.join(str(p) for p in problem.path) or '(reply)'}: {problem.message}"
            for problem in problems[:5]
        )
        raise JudgeReplyError(f"judge reply does not match its schema: {described}")
    return data


def _excerpt(text: str) -> str:
    return text if len(text) <= _REPLY_EXCERPT_CHARS else text[:_REPLY_EXCERPT_CHARS] + "…"


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait: a number, or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured", "schema", "guided")


def _rejects_format(response: httpx.Response) -> bool:
    """Whether a 400/422 is about the requested output format (and not, say, the context length), so
    stepping down to a simpler format can help."""
    text = response.text.lower()
    return any(word in text for word in _FORMAT_WORDS)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return _excerpt(str(message if message else response.text))


# ----- cache


class ResponseCache:
    """Judge answers on disk (SQLite), keyed by a hash of model, messages, schema and sample number.

    Only answers that parsed and validated are stored, so a malformed reply is asked again next time.
    One connection is shared by the client's threads behind a lock; SQLite's WAL lets several
    processes share the file.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A lost answer only costs asking again, so commits need not wait for the disk.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, model TEXT NOT NULL,"
            " content TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,"
            " created_at REAL NOT NULL)"
        )

    def get(self, key: str) -> tuple[str, int | None, int | None] | None:
        """The stored content and token counts, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT content, prompt_tokens, completion_tokens FROM judge_cache WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else (str(row[0]), row[1], row[2])

    def put(self, key: str, *, model: str, content: str, tokens: tuple[int | None, int | None]) -> None:
        """Store (or replace) one answer."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO judge_cache VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, content, tokens[0], tokens[1], time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM judge_cache").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def cache_key(
    *, model: str, messages: Sequence[Mapping[str, str]], schema: Mapping[str, Any], sample: int
) -> str:
    """The content hash an answer is cached under."""
    blob = json.dumps(
        {"model": model, "messages": list(messages), "schema": schema, "sample": sample},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


# ----- client


@dataclass
class _Stats:
    requests: int = 0
    http_wait_s: float = 0.0


class JudgeClient:
    """Thread-safe client of one OpenAI-compatible endpoint and model.

    ``transport`` lets a caller route requests elsewhere (``httpx.MockTransport`` is never needed: the
    test kit has a real loopback server); ``sleep`` is injected so the waits the client chooses can be
    observed. :meth:`with_overrides` gives a client for another model or endpoint (a per-agent or
    per-metric override) that shares this one's cache and concurrency bound.
    """

    def __init__(
        self,
        config: JudgeConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cache: ResponseCache | None = None,
        slots: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.config = config
        headers = {"content-type": "application/json"}
        if config.api_key is not None:
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            limits=httpx.Limits(
                max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency
            ),
        )
        self._transport = transport
        self._sleep = sleep
        self._owns_cache = cache is None and config.cache_path is not None
        self._cache = (
            cache if cache is not None else (ResponseCache(config.cache_path) if config.cache_path else None)
        )
        self._slots = slots or threading.BoundedSemaphore(config.max_concurrency)
        self._mode: OutputMode = config.output_mode
        self._mode_lock = threading.Lock()
        self._random = random.Random()
        self._stats = _Stats()
        self._stats_lock = threading.Lock()
        self._derived: dict[tuple[str, str, SecretStr | None], JudgeClient] = {}
        self._derived_lock = threading.Lock()

    @property
    def model(self) -> str:
        """The model this client asks."""
        return self.config.model

    @property
    def output_mode(self) -> OutputMode:
        """How JSON is requested now (it steps down once a server rejects a mode)."""
        return self._mode

    def stats(self) -> dict[str, float]:
        """Requests sent over HTTP and the seconds spent waiting on them, summed over threads."""
        with self._stats_lock:
            return {"requests": self._stats.requests, "http_wait_s": self._stats.http_wait_s}

    def with_overrides(
        self, *, model: str | None = None, base_url: str | None = None, api_key: SecretStr | None = None
    ) -> JudgeClient:
        """A client for another model or endpoint sharing this one's cache and concurrency bound.

        Derived clients are kept and reused (one per override), and closed with this one, so a metric
        that overrides the model on every call does not open a connection pool per call. The configured
        key goes only to the configured endpoint: another ``base_url`` gets ``api_key`` or no key at all.
        """
        config = self.config
        endpoint = base_url or config.base_url
        key = api_key or (config.api_key if endpoint == config.base_url else None)
        target = (model or config.model, endpoint, key)
        if target == (config.model, config.base_url, config.api_key):
            return self
        with self._derived_lock:
            derived = self._derived.get(target)
            if derived is None:
                update = {"model": target[0], "base_url": target[1], "api_key": target[2]}
                derived = JudgeClient(
                    config.model_copy(update=update),
                    transport=self._transport,
                    sleep=self._sleep,
                    cache=self._cache,
                    slots=self._slots,
                )
                self._derived[target] = derived
        return derived

    def close(self) -> None:
        """Close the HTTP connections (and the cache, when this client opened it)."""
        with self._derived_lock:
            derived, self._derived = list(self._derived.values()), {}
        for client in derived:
            client.close()
        self._http.close()
        if self._owns_cache and self._cache is not None:
            self._cache.close()

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----- requests

    def complete_json(
        self,
        *,
        instructions: str,
        data: str,
        schema: Mapping[str, Any],
        schema_name: str,
        temperature: float = 0.0,
        sample: int = 0,
        use_cache: bool = True,
    ) -> JudgeReply:
        """Ask for one JSON object matching ``schema``.

        ``instructions`` (the rubric) is the system message; ``data`` (the transcript and whatever the
        rubric judges it against) is a separate user message. ``sample`` numbers repeated runs of the
        same question, so k runs are k distinct cached answers rather than one answer k times.
        Raises :class:`JudgeReplyError` for a reply that does not parse or validate and
        :class:`~convoscope.errors.JudgeError` when the endpoint fails after its retries.
        """
        system = f"{instructions.strip()}\n\n{_output_instructions(schema)}"
        messages = [{"role": "system", "content": system}, {"role": "user", "content": data}]
        key = cache_key(model=self.config.model, messages=messages, schema=schema, sample=sample)
        started = time.monotonic()
        if use_cache and self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                content, prompt_tokens, completion_tokens = hit
                usage = JudgeUsage(
                    model=self.config.model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost_usd=0.0,
                    cached=True,
                    attempts=0,
                    latency_s=round(time.monotonic() - started, 6),
                    output_mode=self._mode,
                )
                return JudgeReply(data=parse_json_reply(content, schema), usage=usage, content=content)
        body, attempts, mode = self._post(messages, schema, schema_name, temperature)
        content, prompt_tokens, completion_tokens = _read_completion(body)
        usage = JudgeUsage(
            model=self.config.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=self._cost(prompt_tokens, completion_tokens),
            cached=False,
            attempts=attempts,
            latency_s=round(time.monotonic() - started, 6),
            output_mode=mode,
        )
        parsed = parse_json_reply(content, schema)
        if self._cache is not None:
            self._cache.put(
                key, model=self.config.model, content=content, tokens=(prompt_tokens, completion_tokens)
            )
        return JudgeReply(data=parsed, usage=usage, content=content)

    def _cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        price = self.config.prices.get(self.config.model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000

    def _payload(
        self,
        messages: list[dict[str, str]],
        schema: Mapping[str, Any],
        name: str,
        temperature: float,
        mode: OutputMode,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
        }
        if self.config.max_tokens is not None:
            payload["max_tokens"] = self.config.max_tokens
        if mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema), "strict": True},
            }
        elif mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _send(self, payload: Mapping[str, Any]) -> httpx.Response:
        with self._slots:
            started = time.monotonic()
            try:
                return self._http.post("/chat/completions", json=payload)
            finally:
                with self._stats_lock:
                    self._stats.requests += 1
                    self._stats.http_wait_s += time.monotonic() - started

    def _backoff_s(self, attempt: int) -> float:
        ceiling = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * self._random.random())

    def _step_down(self, mode: OutputMode) -> OutputMode | None:
        """Remember that the server rejected ``mode``; the next mode to try, or None."""
        lower = _FALLBACK[mode]
        if lower is not None:
            with self._mode_lock:
                if _RANK[lower] > _RANK[self._mode]:
                    self._mode = lower
        return lower

    def _post(
        self, messages: list[dict[str, str]], schema: Mapping[str, Any], name: str, temperature: float
    ) -> tuple[Any, int, OutputMode]:
        """The decoded reply body, the attempts it took and the output mode that worked."""
        mode = self._mode
        attempt = 0
        attempts = 0
        while True:
            attempts += 1
            wait: float
            try:
                response = self._send(self._payload(messages, schema, name, temperature, mode))
            except httpx.TimeoutException:
                reason = f"no answer within {self.config.timeout_s:g} s"
                wait = self._backoff_s(attempt)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                wait = self._backoff_s(attempt)
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return response.json(), attempts, mode
                    except ValueError:
                        excerpt = _excerpt(response.text)
                        raise JudgeError(
                            f"judge endpoint answered 200 with a body that is not JSON: {excerpt!r}"
                        ) from None
                if status in (400, 422) and mode != "prompt" and _rejects_format(response):
                    lower = self._step_down(mode)
                    if lower is not None:
                        mode = lower
                        continue
                if status != 429 and status < 500:
                    raise JudgeError(f"judge endpoint answered {status}: {_error_message(response)}")
                reason = f"HTTP {status}: {_error_message(response)}"
                asked = _retry_after_s(response)
                if asked is not None and asked > self.config.max_retry_after_s:
                    raise JudgeError(
                        f"judge endpoint asked to retry after {asked:g} s, over the "
                        f"{self.config.max_retry_after_s:g} s limit ({reason})"
                    )
                wait = asked if asked is not None else self._backoff_s(attempt)
            if attempt >= self.config.max_retries:
                raise JudgeError(f"judge endpoint failed after {attempts} attempts: {reason}")
            attempt += 1
            self._sleep(wait)


_RANK: dict[OutputMode, int] = {"json_schema": 0, "json_object": 1, "prompt": 2}


def _read_completion(body: Any) -> tuple[str, int | None, int | None]:
    """The assistant content and token counts of a chat-completions body."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeReplyError(
            f"judge reply has no choices[0].message.content: {_excerpt(json.dumps(body))!r}"
        ) from None
    if not isinstance(content, str):
        refusal = body["choices"][0]["message"].get("refusal")
        if refusal:
            raise JudgeReplyError(f"judge refused to answer: {_excerpt(str(refusal))!r}")
        raise JudgeReplyError("judge reply content is empty")
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}

    def count(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) else None

    return content, count("prompt_tokens"), count("completion_tokens")


def _output_instructions(schema: Mapping[str, Any]) -> str:
    """Told to every server, so one that ignores ``response_format`` still knows the shape."""
    return "Answer with one JSON object and nothing else. It must match this JSON Schema:\n" + json.dumps(
        schema, sort_keys=True
    )


def judge_from_settings(settings: Settings, **options: Any) -> JudgeClient | None:
    """The configured judge client, or None when no LLM endpoint is configured."""
    config = JudgeConfig.from_settings(settings)
    return None if config is None else JudgeClient(config, **options)
