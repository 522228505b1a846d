"""Agent profiles: which metrics an agent is judged by, with which thresholds, against which prompt.

Profiles live in the project's settings under ``("agents", agent_id)``, with ``("agents", "*")`` as the
project-wide fallback, or in a YAML file for direct runs and version control::

    agents:
      support-bot:
        system_prompt: "You are the support line of Acme..."
        knowledge_base: [kb/returns.md, kb/shipping.md]
        metrics:
          latency: {turn_max_s: 2.5}
          disclosure: {phrases: ["this call may be recorded"]}

An agent nobody configured gets an empty profile, which runs the default metric set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import InputError
from .base import AgentProfile

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES_PATH",
    "knowledge_texts",
    "load_profiles",
    "parse_profiles",
    "profile_for",
]

PROFILES_PATH = ("agents",)
"""Where agent profiles live in a project's settings document."""

DEFAULT_PROFILE = "*"
"""The profile key that applies to every agent without its own."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(profile)'}: {e['msg']}" for e in exc.errors())


def parse_profiles(document: Any, *, where: str) -> dict[str, AgentProfile]:
    """Profiles from a parsed document: ``{"agents": {id: profile}}``, ``{id: profile}`` or a list of
    profiles naming their ``agent_id``. Errors name ``where`` and the agent."""
    if isinstance(document, Mapping) and "agents" in document:
        document = document["agents"]
    entries: list[tuple[str, Any]]
    if isinstance(document, Mapping):
        entries = [(str(key), value) for key, value in document.items()]
    elif isinstance(document, list):
        entries = []
        for position, item in enumerate(document):
            if not isinstance(item, Mapping) or not item.get("agent_id"):
                raise InputError(f"{where}: entry {position} has no agent_id")
            entries.append((str(item["agent_id"]), item))
    elif document is None:
        return {}
    else:
        raise InputError(f"{where}: expected a mapping of agent id to profile, got {type(document).__name__}")
    profiles: dict[str, AgentProfile] = {}
    for agent_id, raw in entries:
        if not isinstance(raw, Mapping):
            raise InputError(f"{where}: agent {agent_id!r}: a profile must be a mapping")
        data = dict(raw)
        data.setdefault("agent_id", None if agent_id == DEFAULT_PROFILE else agent_id)
        try:
            profiles[agent_id] = AgentProfile.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"{where}: agent {agent_id!r}: {_problems(exc)}") from None
    return profiles


def load_profiles(path: Path) -> dict[str, AgentProfile]:
    """The profiles of a YAML (or JSON) file; knowledge-base paths are taken relative to the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    profiles = parse_profiles(document, where=str(path))
    return {
        agent_id: profile.model_copy(
            update={"knowledge_base": [str(path.parent / kb) for kb in profile.knowledge_base]}
        )
        for agent_id, profile in profiles.items()
    }


def profile_for(
    agent_id: str | None,
    settings: Mapping[str, Any],
    overrides: Mapping[str, AgentProfile] | None = None,
) -> AgentProfile:
    """The profile an agent's calls are evaluated with.

    ``overrides`` (profiles from a YAML file) win over the project's settings; within each, the agent's
    own profile wins over the ``"*"`` fallback. A stored profile that does not validate is an error
    naming its settings path.
    """
    keys = [k for k in (agent_id, DEFAULT_PROFILE) if k is not None]
    for key in keys:
        if overrides and key in overrides:
            return overrides[key]
    stored = settings.get(PROFILES_PATH[0]) if isinstance(settings, Mapping) else None
    if isinstance(stored, Mapping):
        for key in keys:
            if key in stored:
                found = parse_profiles({key: stored[key]}, where=f"project settings {PROFILES_PATH[0]}")
                return found[key]
    return AgentProfile(agent_id=agent_id)


def knowledge_texts(profile: AgentProfile) -> list[tuple[str, str]]:
    """(path, text) of every knowledge-base file; one that cannot be read raises :class:`InputError`."""
    texts: list[tuple[str, str]] = []
    for name in profile.knowledge_base:
        try:
            texts.append((name, Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InputError(f"knowledge-base file {name} cannot be read: {reason}") from None
    return texts
