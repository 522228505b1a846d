"""Each project's redaction setting, read from the metadata store and kept for a few seconds.

Every stored batch asks for its project's setting, and settings change rarely, so a read per batch
would cost a metadata query on the ingest path for nothing. A setting is kept ``ttl_s`` (2 s by
default): a change made through another process (the CLI beside a running server) applies to data
stored at most that long after it, and a change through this process's API applies at once, since the
API forgets the project's kept setting when it writes.
"""

from __future__ import annotations

import threading
import time

from ..evals.rules.pii import PiiParams
from ..model import Role
from ..store.metadata import MetadataStore
from .locate import Masker
from .settings import SETTINGS_PATH, RedactionSettings, parse_settings, settings_of

__all__ = ["Policies", "masker_for"]

DEFAULT_TTL_S = 2.0


def masker_for(settings: RedactionSettings) -> Masker:
    """The detectors and marker a setting asks for (every party's words are read)."""
    params = PiiParams(kinds=list(settings.kinds), roles=list(Role), engine=settings.engine)
    return Masker(params, lambda kind: settings.marker(kind))


class Policies:
    """The redaction setting of each project, kept for ``ttl_s`` seconds, and its masker."""

    def __init__(
        self, meta: MetadataStore, *, default: RedactionSettings | None = None, ttl_s: float = DEFAULT_TTL_S
    ) -> None:
        self._meta = meta
        self._default = default or RedactionSettings()
        self._ttl_s = ttl_s
        self._kept: dict[str, tuple[float, RedactionSettings]] = {}
        self._maskers: dict[str, Masker] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> RedactionSettings:
        """The setting of a project that has none of its own."""
        return self._default

    def settings(self, project_id: str) -> RedactionSettings:
        """The project's setting (its own, else the default); a stored setting that no longer validates
        is an error, never read as "off"."""
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(project_id)
        if kept is not None and now - kept[0] < self._ttl_s:
            return kept[1]
        found = settings_of(self._meta.project_settings(project_id), self._default)
        with self._lock:
            self._kept[project_id] = (now, found)
        return found

    def masker(self, settings: RedactionSettings) -> Masker:
        """The masker of a setting, built once per distinct setting."""
        key = settings.model_dump_json()
        with self._lock:
            masker = self._maskers.get(key)
            if masker is None:
                masker = self._maskers[key] = masker_for(settings)
            return masker

    def own(self, project_id: str) -> RedactionSettings | None:
        """The setting the project itself holds, None when it has none (the default then applies)."""
        stored = self._meta.project_settings(project_id).get(SETTINGS_PATH[0])
        return None if stored is None else parse_settings(stored)

    def write(self, project_id: str, settings: RedactionSettings | None) -> None:
        """Store the project's setting (None removes it) and apply it to what is stored from now on."""
        value = None if settings is None else settings.model_dump(mode="json")
        self._meta.update_project_settings(project_id, SETTINGS_PATH, value)
        self.forget(project_id)

    def forget(self, project_id: str | None = None) -> None:
        """Drop the kept setting of one project (or of all): the next read goes to the store."""
        with self._lock:
            if project_id is None:
                self._kept.clear()
            else:
                self._kept.pop(project_id, None)
