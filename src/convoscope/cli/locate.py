"""Which data directory a command acts on, and refusing to invent one a user did not ask for.

``convoscope demo`` keeps its data in ``<default>/demo`` so that playing with it never mixes demo calls
into real ones, while every other command defaults to ``<default>``. Without help, ``calls list`` right
after ``convoscope demo`` would read an empty store (and create it). So a command not given
``--data-dir`` goes to a server running on the default directory, else to the demo's server when that one
runs, and says so on stderr. ``CONVOSCOPE_DATA_DIR`` (or the config file) moves the default directory,
and the demo's with it, so it does not turn this off. Commands that only read refuse a directory that
holds no store instead of creating an empty one.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..config import Settings, load_settings
from ._shared import fail

__all__ = ["DEMO_SUBDIR", "command_settings", "demo_data_dir", "has_store"]

DEMO_SUBDIR = "demo"
"""Where ``convoscope demo`` keeps its data, under the default data directory."""

_notes = Console(stderr=True)


def demo_data_dir(settings: Settings) -> Path:
    """The demo's data directory when the demo is not given one."""
    return settings.data_dir / DEMO_SUBDIR


def has_store(settings: Settings) -> bool:
    """Whether the data directory holds a store (its embedded parts exist, or none is embedded)."""
    embedded: list[Path] = []
    if settings.metadata_url is None:
        embedded.append(settings.data_dir / "metadata.db")
    if settings.clickhouse_url is None:
        embedded.append(settings.data_dir / "chdb")
    return not embedded or any(path.exists() for path in embedded)


def command_settings(data_dir: Path | None, *, reads_only: bool) -> Settings:
    """The settings of a command that reaches a data directory.

    ``reads_only`` commands (listing, showing, evaluating stored calls) exit 2 when the directory holds no
    store; commands that store something may start one.
    """
    from ..store.lock import running_server_url

    settings = load_settings(data_dir=data_dir)
    named = data_dir is not None
    if not named and running_server_url(settings.data_dir) is None:
        demo = demo_data_dir(settings)
        url = running_server_url(demo)
        if url is not None:
            _notes.print(f"using the demo server at {url} (data in {demo})", highlight=False, soft_wrap=True)
            return settings.model_copy(update={"data_dir": demo})
    if reads_only and not has_store(settings):
        hint = ""
        demo = demo_data_dir(settings)
        if not named and has_store(settings.model_copy(update={"data_dir": demo})):
            hint = f" (the demo's data is in {demo}: run `convoscope demo`, or pass --data-dir {demo})"
        fail(f"no convoscope data in {settings.data_dir}; start `convoscope serve` or pass --data-dir{hint}")
    return settings
