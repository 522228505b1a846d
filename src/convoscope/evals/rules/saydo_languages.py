"""Say-do claims in other languages: a perfect or passive auxiliary followed by a participle the table
knows ("he cancelado su pedido", "j'ai annulé votre réservation", "ho prenotato", "ich habe ... storniert").

Agents answer callers in the caller's language while their tools keep English names, so a claim in Spanish
is backed by the same ``cancel_order`` call as one in English. Each language gives its auxiliaries and its
participles by action (the taxonomy's action names), so a participle covers every sentence it appears in;
a negation before it ("no he podido", "je n'ai pas") or a question makes it no claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ...model.call import Turn
from .saydo_claims import Claim

__all__ = ["foreign_claims"]


@dataclass(frozen=True)
class _Language:
    auxiliaries: str
    """Words that make the following participle a completed action (perfect tense or passive)."""
    negations: str
    participles: dict[str, str]
    """Participle (as said, lower case) → action."""


def _table(spec: str) -> dict[str, str]:
    """``"cancel: a b; book: c"`` as {participle: action}."""
    out: dict[str, str] = {}
    for group in spec.split(";"):
        action, _, words = group.partition(":")
        out.update({word: action.strip() for word in words.split()})
    return out


_LANGUAGES: dict[str, _Language] = {
    "es": _Language(
        r"he|hemos|ha sido|han sido|ya está|quedó|queda",
        r"no|nunca|todavía no|aún no",
        _table(
            "cancel: cancelado cancelada anulado anulada; book: reservado reservada agendado agendada "
            "programado programada; update: cambiado modificado actualizado actualizada; send: enviado "
            "enviada; refund: reembolsado reembolsada devuelto; transfer: transferido transferida; block: "
            "bloqueado bloqueada; unlock: desbloqueado desbloqueada; activate: activado activada; add: "
            "añadido añadida agregado agregada; remove: eliminado eliminada; reset: restablecido; renew: "
            "renovado renovada; escalate: escalado; reschedule: reprogramado reprogramada"
        ),
    ),
    "fr": _Language(
        r"j'ai|nous avons|on a|a été|ont été|est|sont",
        r"ne|n'|pas|jamais",
        _table(
            "cancel: annulé annulée; book: réservé réservée programmé programmée; update: changé modifié "
            "modifiée; send: envoyé envoyée; refund: remboursé remboursée; transfer: transféré; "
            "block: bloqué bloquée; unlock: débloqué débloquée; activate: activé activée; "
            "add: ajouté ajoutée; remove: supprimé supprimée; reset: réinitialisé; "
            "renew: renouvelé renouvelée; order: commandé; reschedule: reporté reportée déplacé déplacée"
        ),
    ),
    "it": _Language(
        r"ho|abbiamo|è stato|è stata|sono stati|sono state",
        r"non|mai",
        _table(
            "cancel: annullato annullata; book: prenotato prenotata; update: cambiato modificato aggiornato; "
            "send: inviato inviata spedito; refund: rimborsato rimborsata; transfer: trasferito; block: "
            "bloccato bloccata; unlock: sbloccato sbloccata; activate: attivato attivata; add: aggiunto "
            "aggiunta; remove: rimosso rimossa; renew: rinnovato; order: ordinato; reschedule: spostato "
            "spostata"
        ),
    ),
    "pt": _Language(
        r"eu|já|foi|foram|está|tenho",
        r"não|nunca",
        _table(
            "cancel: cancelei cancelado cancelada; book: reservei reservado reservada agendei agendado; "
            "update: alterei atualizei alterado atualizado; send: enviei enviado enviada; refund: reembolsei "
            "reembolsado; transfer: transferi transferido; block: bloqueei bloqueado; unlock: desbloqueei "
            "desbloqueado; activate: ativei ativado; add: adicionei adicionado; remove: removi removido"
        ),
    ),
    "de": _Language(
        r"habe|haben|hab|wurde|wurden|ist|sind",
        r"nicht|kein|keine|nie",
        _table(
            "cancel: storniert abgesagt gekündigt; book: gebucht reserviert; update: geändert aktualisiert; "
            "send: gesendet geschickt verschickt; refund: erstattet zurückerstattet; transfer: "
            "weitergeleitet; block: gesperrt; unlock: entsperrt; activate: aktiviert; add: hinzugefügt; "
            "remove: entfernt; reset: zurückgesetzt; renew: verlängert; order: bestellt; reschedule: "
            "verschoben umgebucht verlegt"
        ),
    ),
}

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[^\W\d_]+'")
_SENTENCE = re.compile(r"[^.!?¿¡]+[.!?]*")
MAX_GAP_WORDS = 6
_AND = frozenset({"und", "y", "e", "et"})
"""Words an auxiliary may stand before its participle ("ich habe Ihre Buchung für Montag storniert")."""


VERB_FINAL_GAP_WORDS = 12
"""The same for German, whose participle closes the clause ("ich habe den Termin auf Freitag um 16 Uhr
verschoben")."""


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[frozenset[str], frozenset[str], dict[str, str], int], ...]:
    return tuple(
        (
            frozenset(a for a in lang.auxiliaries.split("|") if " " not in a),
            frozenset(lang.negations.split("|")),
            lang.participles,
            VERB_FINAL_GAP_WORDS if code == "de" else MAX_GAP_WORDS,
        )
        for code, lang in _LANGUAGES.items()
    )


def foreign_claims(turns: Sequence[Turn]) -> list[Claim]:
    """Claims in the other languages' sentences: at most one per action per sentence."""
    claims: list[Claim] = []
    for turn in turns:
        for match in _SENTENCE.finditer(turn.text.replace("\u2019", "'").lower()):
            sentence = match.group(0).strip()
            if not sentence or sentence.endswith("?"):
                continue
            words = _WORD.findall(sentence)
            seen: set[str] = set()
            for auxiliaries, negations, participles, gap in _compiled():
                last: int | None = None
                for i, word in enumerate(words):
                    action = participles.get(word)
                    if action is None or action in seen:
                        continue
                    before = words[max(0, i - gap) : i]
                    joined = " ".join(words[max(0, i - gap - 1) : i])
                    has_aux = bool(auxiliaries & set(before)) or any(
                        aux in joined
                        for aux in ("ha sido", "han sido", "a été", "ont été", "è stat", "ya está")
                    )
                    # "ich habe den Termin verschoben und Ihnen eine Bestätigung geschickt": the second
                    # participle shares the first one's auxiliary across the conjunction
                    has_aux = has_aux or (last is not None and bool(_AND & set(words[last + 1 : i])))
                    if not has_aux or negations & set(before) or any(w.startswith("n'") for w in before):
                        continue
                    seen.add(action)
                    last = i
                    objects = tuple(words[i + 1 :])
                    claims.append(
                        Claim(turn.index, action, sentence, frozenset({action}), objects, "other-language")
                    )
    return claims
