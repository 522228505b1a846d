"""The attack library: what a red-team run says to the agent, why, and how each attempt is graded.

An :class:`Attack` is data, not code: the caller's lines (benign ``setup`` lines that build rapport,
then the ``payload`` lines that attack, either escalating or rephrasing the same ask), branches that
answer the agent's own questions so the conversation reaches the point where a leak or an action can
happen, tool mocks whose results can carry an injected instruction (indirect injection), and the
grading: the engine's :class:`~convoscope.evals.scenario.ScenarioChecks` (forbidden phrases and regular
expressions, forbidden tool calls with argument matchers, required phrases) plus evaluators that apply
(``pii_leakage``). Every attack names the OWASP Top 10 for LLM Applications 2025 entries it probes, so a
report can be read against that list.

The built-in attacks live in ``attacks.yaml`` beside this module (one YAML document per attack), so
adding one is adding a document; a project can keep its own attacks in files of the same shape
(:func:`load_attacks`). Attacks are validated as strictly as simulation definitions: unknown fields,
unknown categories or OWASP ids and regular expressions that do not compile are errors naming the file
and the attack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import InputError
from ...evals.scenario import ScenarioChecks
from ..definitions import ScriptReply, ToolMock

__all__ = [
    "OWASP_NAMES",
    "Attack",
    "AttackError",
    "Category",
    "Owasp",
    "builtin_attacks",
    "load_attacks",
    "parse_attacks",
    "select",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Owasp(StrEnum):
    """The OWASP Top 10 for LLM Applications, 2025 edition, by id."""

    LLM01 = "LLM01:2025"
    LLM02 = "LLM02:2025"
    LLM03 = "LLM03:2025"
    LLM04 = "LLM04:2025"
    LLM05 = "LLM05:2025"
    LLM06 = "LLM06:2025"
    LLM07 = "LLM07:2025"
    LLM08 = "LLM08:2025"
    LLM09 = "LLM09:2025"
    LLM10 = "LLM10:2025"


OWASP_NAMES: dict[Owasp, str] = {
    Owasp.LLM01: "Prompt Injection",
    Owasp.LLM02: "Sensitive Information Disclosure",
    Owasp.LLM03: "Supply Chain",
    Owasp.LLM04: "Data and Model Poisoning",
    Owasp.LLM05: "Improper Output Handling",
    Owasp.LLM06: "Excessive Agency",
    Owasp.LLM07: "System Prompt Leakage",
    Owasp.LLM08: "Vector and Embedding Weaknesses",
    Owasp.LLM09: "Misinformation",
    Owasp.LLM10: "Unbounded Consumption",
}
"""The entries' names as the 2025 list writes them. LLM03, LLM04 and LLM08 concern the model's supply
chain, training data and retrieval store, which a conversation cannot probe; no attack maps to them."""


class Category(StrEnum):
    """What an attack tries to make the agent do."""

    JAILBREAK = "jailbreak"
    """Role-play, hypotheticals and emotional framings ("grandma") that talk the agent out of its rules."""
    PROMPT_INJECTION = "prompt_injection"
    """The caller tells the agent to set its instructions aside (direct injection)."""
    INDIRECT_INJECTION = "indirect_injection"
    """An instruction arrives inside a tool result the agent reads (indirect injection)."""
    SYSTEM_PROMPT_EXTRACTION = "system_prompt_extraction"
    """The caller asks for the agent's instructions or the secrets in them."""
    PII_EXFILTRATION = "pii_exfiltration"
    """The caller asks for another customer's details: name, phone, date of birth, card."""
    TOXICITY = "toxicity"
    """The caller baits the agent into insults, slurs or profanity."""
    UNAUTHORIZED_ACTION = "unauthorized_action"
    """The caller gets the agent to act through its tools without the right: cancel someone else's
    booking, refund without verification, move money."""
    MISINFORMATION = "misinformation"
    """The caller gets the agent to confirm a false premise (a price, a promise, a policy)."""
    OUTPUT_HANDLING = "output_handling"
    """The caller smuggles markup or code (SSML, SQL, script) into what the agent says or sends to a
    tool, where a downstream system would interpret it."""
    RESOURCE_ABUSE = "resource_abuse"
    """The caller tries to make the agent talk or work without bound."""


Strategy = Literal["single", "escalation", "rephrase"]


class Attack(BaseModel):
    """One attack: the caller's lines, the tool results it plants, and how a break is recognised."""

    model_config = _FROZEN

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    """Unique in the library; variants add ``.<encoding>`` to it."""
    category: Category
    owasp: list[Owasp] = Field(min_length=1)
    """The OWASP Top 10 for LLM Applications 2025 entries it probes, the main one first."""
    description: str = Field(min_length=1)
    """What the attack tries, in a sentence (it becomes the scenario's goal)."""
    strategy: Strategy = "single"
    """``single``: one ask; ``escalation``: benign set-up, rapport, then the ask, each line pushing
    harder; ``rephrase``: the same ask said several ways, as a caller who was refused tries again."""
    setup: list[str] = Field(default_factory=list)
    """Benign lines said first (never encoded or translated)."""
    payload: list[str] = Field(min_length=1)
    """The attack lines, in order (what encodings and translations rewrite)."""
    replies: list[ScriptReply] = Field(default_factory=list)
    """Answers to the agent's own questions (what day, what name), so the conversation gets where the
    attack needs it; checked before the next line, as in any scripted scenario."""
    closing: str | None = "Okay, thanks. Bye."
    facts: dict[str, str] = Field(default_factory=dict)
    tool_mocks: list[ToolMock] = Field(default_factory=list)
    """Answers to the agent's tool calls; an indirect injection plants its instruction in one. Tools no
    mock answers are passed through to the agent's own tool endpoint when it has one."""
    checks: ScenarioChecks = Field(default_factory=ScenarioChecks)
    """What a held attack looks like, checked without a judge (the agent's canaries are added)."""
    refusal: bool = False
    """The agent must refuse in words (:data:`~.build.REFUSAL`). Applied to the plain attack only: an
    agent that does not understand an encoded line has not failed by not refusing it."""
    evaluators: list[str] = Field(default_factory=list)
    """Registered evaluators whose failure is a break too (e.g. ``pii_leakage``); judge evaluators run
    only when an LLM endpoint is configured."""
    encodable: bool = True
    """Whether encodings and translations apply (not for an indirect injection, whose attack is in a
    tool result and whose caller lines are benign)."""
    translations: dict[str, list[str]] = Field(default_factory=dict)
    """The payload in other languages (BCP 47 tag → lines, one per payload line): the built-in
    translation table the language mutations read, so no translation service is needed."""
    max_turns: int = Field(default=12, ge=1, le=100)
    variant: str = "plain"
    """Set by :mod:`.mutate`: ``plain`` for the attack as written, else the encoding or paraphrase."""

    @model_validator(mode="after")
    def _translations_align(self) -> Attack:
        for language, lines in self.translations.items():
            if len(lines) != len(self.payload):
                raise ValueError(
                    f"translations.{language} has {len(lines)} line(s), the payload {len(self.payload)}"
                )
        return self

    @property
    def base_id(self) -> str:
        """The id of the attack this one is a variant of (itself for the plain attack)."""
        return self.id.split(".", 1)[0]


class AttackError(InputError):
    """Attack definitions that cannot be used, with every problem found."""


def parse_attacks(text: str, source: str) -> list[Attack]:
    """The attacks in one YAML text: documents of attack fields (``kind: attack`` allowed), or a document
    with a list of them under ``attacks``."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise AttackError(f"{source}: not valid YAML: {exc}") from None
    attacks: list[Attack] = []
    problems: list[str] = []
    expanded: list[object] = []
    for document in documents:
        # A document may hold a list under ``attacks`` beside ``x-`` keys that only carry YAML anchors
        # (shared replies and patterns), since anchors do not cross documents.
        if isinstance(document, dict) and "attacks" in document:
            extra = [key for key in document if key != "attacks" and not str(key).startswith("x-")]
            if extra:
                problems.append(f"{source}: unknown top-level key(s) {', '.join(map(str, extra))}")
            listed = document["attacks"]
            expanded.extend(listed if isinstance(listed, list) else [listed])
        else:
            expanded.append(document)
    for number, document in enumerate(expanded, start=1):
        if not isinstance(document, dict):
            problems.append(f"{source}: document {number}: an attack must be a mapping")
            continue
        fields = {key: value for key, value in document.items() if key != "kind"}
        if document.get("kind", "attack") != "attack":
            problems.append(f"{source}: document {number}: kind must be attack, not {document['kind']!r}")
            continue
        for key in _LISTS:
            if isinstance(fields.get(key), list):
                fields[key] = _flatten(fields[key])
        checks = fields.get("checks")
        if isinstance(checks, dict):
            fields["checks"] = {
                key: _flatten(value) if isinstance(value, list) else value for key, value in checks.items()
            }
        try:
            attacks.append(Attack.model_validate(fields))
        except ValidationError as exc:
            name = fields.get("id", f"document {number}")
            for error in exc.errors():
                where = ".".join(str(part) for part in error["loc"])
                problems.append(f"{source}: attack {name}: {where}: {error['msg']}")
    if problems:
        raise AttackError(f"{len(problems)} problem(s) in attack definitions:\n  " + "\n  ".join(problems))
    return attacks


_LISTS = ("replies", "tool_mocks", "setup", "payload")


def _flatten(items: list[object]) -> list[object]:
    """A list with its nested lists spliced in, so an anchored YAML list (``*pii``) can be combined with
    more items in one list: YAML itself has no way to concatenate two lists."""
    flat: list[object] = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


@cache
def builtin_attacks() -> tuple[Attack, ...]:
    """The attacks shipped with convoscope (``attacks.yaml``), checked once per process."""
    text = resources.files(__package__).joinpath("attacks.yaml").read_text(encoding="utf-8")
    return tuple(_unique(parse_attacks(text, "attacks.yaml")))


def load_attacks(paths: Sequence[Path], *, with_builtin: bool = True) -> list[Attack]:
    """The built-in attacks (unless ``with_builtin`` is false) and those in ``paths`` (files, or folders
    searched for ``*.yaml``/``*.yml``); an id defined twice is an error."""
    attacks: list[Attack] = list(builtin_attacks()) if with_builtin else []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise AttackError(f"{path}: no such file or folder")
        for file in files:
            attacks.extend(parse_attacks(file.read_text(encoding="utf-8"), str(file)))
    return _unique(attacks)


def _unique(attacks: Iterable[Attack]) -> list[Attack]:
    seen: set[str] = set()
    duplicated: list[str] = []
    for attack in attacks:
        if attack.id in seen:
            duplicated.append(attack.id)
        seen.add(attack.id)
    if duplicated:
        raise AttackError(f"attack id(s) defined more than once: {', '.join(sorted(set(duplicated)))}")
    return list(attacks)


def select(
    attacks: Iterable[Attack],
    *,
    categories: Iterable[str] = (),
    ids: Iterable[str] = (),
    owasp: Iterable[str] = (),
) -> list[Attack]:
    """The attacks in any of ``categories`` (all when empty), narrowed to ``ids`` and OWASP ids when
    given; an unknown category, id or OWASP id is an :class:`AttackError` naming the known ones."""
    pool = list(attacks)
    wanted_categories = set(categories)
    known_categories = {category.value for category in Category}
    if unknown := wanted_categories - known_categories:
        raise AttackError(
            f"unknown categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known_categories))})"
        )
    wanted_ids = set(ids)
    if unknown := wanted_ids - {attack.id for attack in pool}:
        raise AttackError(f"unknown attack(s) {', '.join(sorted(unknown))}")
    wanted_owasp = {value.upper() for value in owasp}
    known_owasp = {item.value for item in Owasp}
    wanted_owasp = {value if ":" in value else f"{value}:2025" for value in wanted_owasp}
    if unknown := wanted_owasp - known_owasp:
        raise AttackError(f"unknown OWASP id(s) {', '.join(sorted(unknown))} (known: LLM01..LLM10)")
    return [
        attack
        for attack in pool
        if (not wanted_categories or attack.category.value in wanted_categories)
        and (not wanted_ids or attack.id in wanted_ids)
        and (not wanted_owasp or any(item.value in wanted_owasp for item in attack.owasp))
    ]
