"""Where the delivery job finds an alert event and a notifier: the metadata database.

Events are kept with their rule's state (``store.alerts_meta``); notifier configurations are kept in the
project's settings document (``alerts.notifiers.<name>``), so they change without a migration and are
validated by the notifier's own model every time they are used.
"""

from __future__ import annotations

from ..errors import NotFound
from ..store.metadata import MetadataStore
from .engine import event_of
from .events import AlertEvent
from .notifiers.registry import NotifierConfig, configured_notifiers

__all__ = ["StoredAlerts"]


class StoredAlerts:
    """The ``AlertSource`` of the delivery job, over the metadata store."""

    def __init__(self, meta: MetadataStore, *, ui_base_url: str | None = None) -> None:
        self._meta = meta
        self._ui_base_url = ui_base_url

    def load_event(self, project_id: str, event_id: str) -> AlertEvent:
        stored = self._meta.get_alert_event(project_id, event_id)
        if stored is None:
            raise NotFound(f"alert event {event_id} not found")
        return event_of(stored, ui_base_url=self._ui_base_url)

    def load_notifier(self, project_id: str, name: str) -> NotifierConfig:
        configs = configured_notifiers(self._meta.project_settings(project_id))
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise NotFound(f"notifier {name!r} is not configured in this project (configured: {known})")
        return configs[name]
