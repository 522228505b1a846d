"""A project's evaluation settings applied in one place, by every path that stores results.

The post-ingest job and a direct ``convoscope eval`` must agree on three things the project's settings
decide: which custom metrics exist (``custom_metrics``, defined in YAML or JSON without Python), which
judge an agent's metrics go to (the configured endpoint, or the agent's own ``judge_base_url`` /
``judge_model`` with its key read from the environment variable the profile names), and the latest
calibration of each metric, attached to every result of it. :class:`ProjectEvaluator` holds the first
two for one settings document and :meth:`ProjectEvaluator.finish` applies the third.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..config import Settings
from ..errors import InputError
from ..model.metric import MetricResult
from .base import AgentProfile, Metric
from .calibration import attach_calibration
from .custom import project_custom_metrics
from .llm import CACHE_FILE, DEFAULT_OPENAI_BASE_URL, JudgeClient, JudgeConfig, judge_from_settings

__all__ = ["JudgePool", "ProjectEvaluator"]


class JudgePool:
    """The configured judge and the agents' own judges, built once each and closed together.

    An agent's override derives from the configured client (sharing its cache and concurrency bound)
    when there is one; without one, the agent's endpoint gets a client of its own. Keys come only from
    ``environ``, named by the profile, so no key is ever stored with a profile.
    """

    def __init__(
        self,
        base: JudgeClient | None,
        *,
        cache_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._base = base
        self._cache_path = cache_path
        self._environ = os.environ if environ is None else environ
        self._own: dict[tuple[str, str, str | None], JudgeClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgePool:
        """The configured judge (if any) and room for the agents' own, with the data directory's cache."""
        return cls(judge_from_settings(settings), cache_path=settings.data_dir / CACHE_FILE)

    @property
    def base(self) -> JudgeClient | None:
        """The configured judge, None when no LLM endpoint is configured."""
        return self._base

    def for_profile(self, profile: AgentProfile) -> JudgeClient | None:
        """The judge of an agent's metrics; a key variable that is not set is an :class:`InputError`."""
        if not (profile.judge_base_url or profile.judge_model or profile.judge_api_key_env):
            return self._base
        agent = profile.agent_id or "*"
        key: SecretStr | None = None
        if profile.judge_api_key_env:
            value = self._environ.get(profile.judge_api_key_env)
            if not value:
                raise InputError(
                    f"agent {agent!r}: environment variable {profile.judge_api_key_env} "
                    "(its judge_api_key_env) is not set"
                )
            key = SecretStr(value)
        if self._base is not None:
            return self._base.with_overrides(
                model=profile.judge_model, base_url=profile.judge_base_url, api_key=key
            )
        if not profile.judge_model or not (profile.judge_base_url or key):
            raise InputError(
                f"agent {agent!r}: no LLM judge is configured, so its profile needs judge_model and "
                "judge_base_url (or judge_api_key_env for the OpenAI endpoint)"
            )
        base_url = profile.judge_base_url or DEFAULT_OPENAI_BASE_URL
        target = (base_url, profile.judge_model, profile.judge_api_key_env)
        with self._lock:
            client = self._own.get(target)
            if client is None:
                config = JudgeConfig(
                    base_url=base_url, model=profile.judge_model, api_key=key, cache_path=self._cache_path
                )
                client = self._own[target] = JudgeClient(config)
            return client

    def close(self) -> None:
        """Close every client (derived ones close with the configured one)."""
        with self._lock:
            owned, self._own = list(self._own.values()), {}
        for client in owned:
            client.close()
        if self._base is not None:
            self._base.close()


class ProjectEvaluator:
    """One project's settings document made ready to evaluate with: custom metrics defined, results
    finished with the stored calibrations."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.custom: dict[str, type[Metric[Any]] | str] = project_custom_metrics(settings)
        """The project's custom metrics by name (a string is why a definition was refused)."""

    def finish(self, results: Iterable[MetricResult]) -> list[MetricResult]:
        """Results as stored: each with its metric's latest calibration in ``evidence``."""
        return attach_calibration(results, self.settings)
