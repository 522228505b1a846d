"""Every ``CONVOSCOPE_*`` setting, declared once with its type, default and reason.

No other module reads the environment: settings travel as arguments from the composition roots
(``server.app`` and ``cli.main``), which keeps every other module testable with plain values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "load_settings", "settings_table"]


CONFIG_FILE_VARIABLE = "CONVOSCOPE_CONFIG"
"""Names a TOML file of settings (keys are the field names, e.g. ``port = 8100``)."""


def _default_data_dir() -> Path:
    return Path.home() / ".convoscope"


RATE_PATTERN = r"^[1-9][0-9]{0,8}/(second|minute|hour|day)$"
"""A rate as the settings take it: a count per unit of time, e.g. ``600/minute``."""


class Settings(BaseSettings):
    """Server and CLI configuration; environment variables win over the optional TOML file."""

    model_config = SettingsConfigDict(env_prefix="CONVOSCOPE_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded stores live: chDB files, SQLite metadata, recordings.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the server binds; loopback by default.")
    port: int = Field(default=8000, description="Port the server listens on.")
    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://user:pass@host:8123/db of a ClickHouse server; unset means embedded chDB.",
    )
    clickhouse_cluster: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]+$",
        description="The cluster (a `remote_servers` name) of the ClickHouse server `clickhouse_url` names: "
        "tables are created `ON CLUSTER`, replicated (`Replicated*` engines over the `{shard}` and "
        "`{replica}` macros) and read and written through a `Distributed` table each. Unset: one server.",
    )
    metadata_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; unset means SQLite in the data directory.",
    )
    blob_url: str | None = Field(
        default=None,
        pattern=r"^s3://[^/]+(/.*)?$",
        description="`s3://bucket/prefix` keeps recordings in an S3-compatible object store (install "
        "`convoscope[s3]`; credentials from the standard AWS chain: `AWS_ACCESS_KEY_ID`/"
        "`AWS_SECRET_ACCESS_KEY`, shared files, an instance role). Unset: files under `<data_dir>/blobs`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Endpoint of an S3-compatible server (MinIO, Ceph, R2, ...) for `CONVOSCOPE_BLOB_URL`; "
        "unset: AWS S3.",
    )
    s3_region: str | None = Field(
        default=None,
        description="Region the S3 requests are signed for; unset: `AWS_REGION` or AWS's default.",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="`path` (`endpoint/bucket/key`, what most self-hosted servers want), `virtual` "
        "(`bucket.endpoint/key`), or `auto` (the client's choice: virtual-hosted where the bucket name "
        "allows).",
    )
    init_api_key: str | None = Field(
        default=None,
        description="Seeds this key for the default project on first start (headless set-up).",
    )
    api_key: str | None = Field(
        default=None, description="Key the CLI sends to a running server (else it mints a local one)."
    )
    default_project: str = Field(default="default", description="Name of the project created on first start.")
    rate_limit: str | None = Field(
        default=None,
        pattern=RATE_PATTERN,
        description="Most requests one API key may make to the API and the OTLP receiver, e.g. `600/minute` "
        "(`N/second`, `minute`, `hour` or `day`, a moving window); more get 429 with `Retry-After`. "
        "Unset: no limit.",
    )
    login_rate_limit: str | None = Field(
        default="20/minute",
        pattern=RATE_PATTERN,
        description="Most sign-in attempts to the web UI from one client address (`N/minute`, ...); "
        "more get 429 with `Retry-After`. Unset: no limit.",
    )
    max_body_bytes: int = Field(
        default=25 * 1024 * 1024, description="Largest request body accepted; larger gets 413."
    )
    max_batch_calls: int = Field(default=1000, description="Most calls in one POST /api/v1/calls batch.")
    max_call_bytes: int = Field(
        default=5 * 1024 * 1024, description="Largest single call, as JSON; larger gets 413."
    )
    max_turns_per_call: int = Field(default=5000, description="Most turns one call may carry; more is 422.")
    max_tool_calls_per_call: int = Field(default=2000, description="Most tool calls one call may carry.")
    max_spans_per_call: int = Field(default=20000, description="Most spans stored for one call.")
    otlp_idle_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds without new spans before an open OTLP conversation becomes a call.",
    )
    otlp_chat_idle_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds without new spans before an open chat (an LLM app's conversation, "
        "root span not seen) becomes a call; later spans update it.",
    )
    otlp_settle_s: float = Field(
        default=2.0,
        ge=0,
        description="Seconds after an OTLP conversation's root span before it is assembled.",
    )
    otlp_max_attribute_chars: int = Field(
        default=16384,
        ge=64,
        description="Longest span attribute value kept whole; longer is cut with a marker.",
    )
    otlp_max_span_chars: int = Field(
        default=262144,
        ge=1024,
        description="Largest total of one span's attributes; the largest are cut first.",
    )
    otlp_max_attributes: int = Field(
        default=256, ge=16, description="Most attributes kept per span (identity keys always kept)."
    )
    otlp_max_document_chars: int = Field(
        default=65536,
        ge=64,
        le=1_048_576,
        description="Longest retrieved document content kept whole (apart from the attribute caps); "
        "longer is cut, and the OTLP answer says so.",
    )
    otlp_max_documents: int = Field(
        default=256,
        ge=1,
        le=1024,
        description="Most retrieved documents kept per span; the OTLP answer says how many were left out.",
    )
    tts_prices: dict[str, float] = Field(
        default={}, description='USD per million TTS characters by model, JSON: `{"sonic-2": 30}`.'
    )
    stt_prices: dict[str, float] = Field(
        default={}, description='USD per audio minute of STT by model, JSON: `{"nova-3": 0.0043}`.'
    )
    max_recording_bytes: int = Field(
        default=200 * 1024 * 1024, description="Largest recording file accepted on upload."
    )
    max_webhook_audio_bytes: int = Field(
        default=100 * 1024 * 1024,
        description="Largest body of `POST /api/v1/ingest/elevenlabs` (`post_call_audio` is base64 MP3).",
    )
    recording_fetch_allowed_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(),
        description="Private, loopback or link-local networks recording links may point at, JSON: "
        '`["10.0.0.0/8"]`; other such addresses are refused.',
    )
    outbox_batch_calls: int = Field(
        default=2000, description="Calls the ingest worker writes to ClickHouse in one insert."
    )
    outbox_poll_s: float = Field(
        default=0.5, description="How often the worker looks for work it was not told of."
    )
    outbox_max_attempts: int = Field(
        default=5,
        ge=1,
        description="Failures of one ingest row, alone in its batch, before it goes to the dead letters.",
    )
    outbox_retry_s: float = Field(
        default=2.0,
        gt=0,
        description="Wait before a row that failed alone is tried again; each further failure waits 4x.",
    )
    run_jobs: bool = Field(
        default=True,
        description="Whether `serve` drains ingest and runs post-ingest jobs, alerts, schedules and "
        "retention itself. `false`: the server only answers requests, and `convoscope worker` processes "
        "do that work (needs `CONVOSCOPE_CLICKHOUSE_URL` and a PostgreSQL `CONVOSCOPE_METADATA_URL`).",
    )
    claim_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a process's claim on a job or on ingest rows holds unless renewed; a killed "
        "worker's work is taken up by another once its lease has run out.",
    )
    health_stall_s: float = Field(
        default=120.0,
        gt=0,
        description="`/healthz` answers 503 when due ingest rows wait and none was stored for this long.",
    )
    health_dead_letter_window_s: float = Field(
        default=600.0,
        gt=0,
        description="The window over which `/healthz` counts newly dead-lettered ingest rows.",
    )
    health_max_dead_letters: int = Field(
        default=0,
        ge=0,
        description="`/healthz` answers 503 when more rows than this were dead-lettered in the window.",
    )
    outbox_retention_days: int = Field(
        default=7, description="Days a drained outbox row (the raw payload) is kept before it is purged."
    )
    query_max_threads: int = Field(
        default=2,
        description="Threads one UI/API query may use, so reads cannot starve ingest on a small box.",
    )
    merge_threads: int = Field(
        default=2, ge=1, description="Background merge threads of the embedded engine (chDB)."
    )
    max_memory_bytes: int | None = Field(
        default=None, description="Memory cap of the embedded engine; unset lets it use up to 90% of RAM."
    )
    system_log_ttl_days: int = Field(
        default=3, description="TTL applied to any ClickHouse system log table found at start-up."
    )
    llm_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CONVOSCOPE_LLM_BASE_URL", "OPENAI_BASE_URL"),
        description="OpenAI-compatible endpoint of the LLM judge (falls back to `OPENAI_BASE_URL`).",
    )
    llm_model: str | None = Field(
        default=None, description="Model the LLM judge asks; judge metrics run only when it is set."
    )
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CONVOSCOPE_LLM_API_KEY", "OPENAI_API_KEY"),
        description="Bearer key of the judge endpoint (falls back to `OPENAI_API_KEY`); never logged.",
    )
    llm_prices: dict[str, tuple[float, float]] = Field(
        default={},
        description='USD per million input and output tokens by model, JSON: `{"m": [0.15, 0.6]}`.',
    )
    llm_max_concurrency: int = Field(default=8, ge=1, description="Judge requests in flight at once.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one judge request.")
    voice_tts_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible `/audio/speech` endpoint for simulated callers' voices; "
        "unset: espeak-ng.",
    )
    voice_tts_model: str = Field(default="tts-1", description="Model the caller's TTS endpoint is asked for.")
    voice_tts_voice: str | None = Field(
        default=None, description="Voice sent to the TTS endpoint; unset: each persona's `voice`."
    )
    voice_tts_api_key: SecretStr | None = Field(default=None, description="Bearer key of the TTS endpoint.")
    voice_stt_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible `/audio/transcriptions` endpoint for LLM callers' ears; unset: "
        "Whisper tiny.en from the `asr` extra.",
    )
    voice_stt_model: str = Field(
        default="whisper-1", description="Model the caller's STT endpoint is asked for."
    )
    voice_stt_api_key: SecretStr | None = Field(default=None, description="Bearer key of the STT endpoint.")
    alerts_interval_s: float = Field(
        default=60.0, ge=1, le=86_400, description="Seconds between scheduled evaluations of the alert rules."
    )
    alerts_allowed_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(),
        description="Private, loopback or link-local networks alert notifiers may reach, JSON: "
        '`["10.0.0.0/8"]`; other such addresses are refused.',
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Where people reach this server's UI (e.g. `https://convoscope.example.com`): alert "
        "notifications link to the calls there; unset, they carry no links.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit options, then the environment, then the TOML file named by ``CONVOSCOPE_CONFIG``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _cluster_needs_a_server(self) -> Settings:
        """Refused at load, so a cluster set beside the embedded engine stops start-up with its name."""
        if self.clickhouse_cluster and not self.clickhouse_url:
            raise ValueError(
                "CONVOSCOPE_CLICKHOUSE_CLUSTER (clickhouse_cluster) needs CONVOSCOPE_CLICKHOUSE_URL: a "
                "cluster is reached through one of its ClickHouse servers, and embedded chDB has none"
            )
        return self

    @property
    def resolved_metadata_url(self) -> str:
        """The metadata database URL, defaulting to SQLite inside the data directory."""
        return self.metadata_url or f"sqlite:///{self.data_dir / 'metadata.db'}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit CLI options on top (None means not given)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]


def settings_table() -> str:
    """The configuration reference as a Markdown table, generated so the docs cannot drift."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "`~/.convoscope`" if name == "data_dir" else "(computed)"
        elif field.default is None:
            default = "unset"
        else:
            default = f"`{field.default}`"
        rows.append(f"| `CONVOSCOPE_{name.upper()}` | {default} | {field.description or ''} |")
    return "\n".join(rows) + "\n"
