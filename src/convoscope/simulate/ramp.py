"""Load ramps: concurrency levels, per-step figures, and the report that compares each step with the first.

``convoscope load`` runs the same ramp against a voice agent (:mod:`.voice.load`, calls measured from
their recordings) or a chat agent (:mod:`.load_chat`, conversations timed per agent turn). A step is any
object with a ``concurrency`` and a ``summary()``; the report puts the steps side by side and divides
each step's figures by the first step's, so a noisy shared machine still gives comparable ratios.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

__all__ = ["DIAL_RATE", "Held", "LoadReport", "StepLike", "hold", "parse_ramp", "percentile"]

T = TypeVar("T")

DIAL_RATE = 50.0
"""New conversations a second at the start of a step (the ramp's arrival rate)."""


def parse_ramp(text: str, *, steps: int | None = None) -> list[int]:
    """``"10..200"`` as concurrency levels: doubling from the low end, the high end last (``steps``
    spaces them evenly instead); a single number is one step. ``ValueError`` naming the problem."""
    low_text, sep, high_text = text.partition("..")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise ValueError(f"ramp {text!r}: expected LOW..HIGH, e.g. 10..200") from None
    if low < 1 or high < low or high > 5000:
        raise ValueError(f"ramp {text!r}: need 1 <= LOW <= HIGH <= 5000")
    if steps is not None:
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if steps == 1 or low == high:
            return [high]
        return sorted({round(low + (high - low) * i / (steps - 1)) for i in range(steps)})
    levels = [low]
    while levels[-1] * 2 < high:
        levels.append(levels[-1] * 2)
    if levels[-1] != high:
        levels.append(high)
    return levels


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (numpy's linear), rounded to 0.1 ms; None for no values."""
    return round(float(np.percentile(np.asarray(values), q)), 4) if len(values) else None


class StepLike(Protocol):
    """A step of a ramp as the report needs it."""

    @property
    def concurrency(self) -> int: ...

    def summary(self) -> dict[str, Any]: ...


_COMPARED = (
    ("response_gap_s", "p95"),
    ("time_to_first_audio_s", "p50"),
    ("pacing_jitter_ms", "p99"),
    ("turn_latency_s", "p95"),
)
"""The figures each step is compared on with the first step (those a step has)."""


@dataclass
class LoadReport:
    """Every step, and how long the analysis of all recordings took after the last call."""

    agent_id: str
    steps: Sequence[StepLike]
    step_s: float
    analysis_s: float = 0.0
    mode: str = "voice"

    def to_json(self) -> dict[str, Any]:
        steps = [step.summary() for step in self.steps]
        base = steps[0] if steps else {}
        for step in steps:
            compared: dict[str, float | None] = {}
            for key, q in _COMPARED:
                if key in step and key in base:
                    now, then = step[key][q], base[key][q]
                    compared[f"{key.removesuffix('_s').removesuffix('_ms')}_{q}"] = (
                        round(now / then, 3) if now is not None and then else None
                    )
            step["vs_baseline"] = compared
        return {
            "agent": self.agent_id,
            "mode": self.mode,
            "step_s": self.step_s,
            "analysis_s": round(self.analysis_s, 2),
            "steps": steps,
        }


@dataclass
class Held(Generic[T]):
    """What one step's conversations became, and what the step cost this process."""

    concurrency: int
    results: list[T] = field(default_factory=list)
    started: float = 0.0
    """``time.monotonic()`` when the step began (ended: ``started + wall_s``)."""
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def cpu_pct(self) -> float | None:
        """This process's CPU over the step, in per cent of one core."""
        return round(100 * self.cpu_s / self.wall_s, 1) if self.wall_s else None


async def hold(
    level: int,
    step_s: float,
    start: Callable[[], Awaitable[T]],
    *,
    refused: Callable[[T], bool],
    on_result: Callable[[T], None] | None = None,
) -> Held[T]:
    """Keep ``level`` conversations going for ``step_s`` seconds (a closed model: each one that ends is
    started again), then wait for those in flight. Starts are spread (at most :data:`DIAL_RATE` a
    second): real callers do not all dial on the same millisecond, and a burst of handshakes would stall
    the conversations already talking. A ``refused`` one is not retried in a tight loop."""
    held: Held[T] = Held(level, started=time.monotonic())
    deadline = held.started + step_s
    cpu0 = time.process_time()
    spread = min(step_s / 4, level / DIAL_RATE)

    async def worker(index: int) -> None:
        await asyncio.sleep(spread * index / level)
        while time.monotonic() < deadline:
            result = await start()
            held.results.append(result)
            if on_result is not None:
                on_result(result)
            if refused(result):
                await asyncio.sleep(0.5)

    await asyncio.gather(*(worker(i) for i in range(level)))
    held.wall_s = time.monotonic() - held.started
    held.cpu_s = time.process_time() - cpu0
    return held
