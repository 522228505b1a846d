"""What the words around a value say about whose it is.

A phone-shaped number can be a caller's mobile or a parcel's job number; an address can be a caller's
inbox or the business's claims desk. The value's shape cannot tell them apart, the words next to it can:
the nearest labelling noun ("tracking", "IMEI", "card") names what the number is, and an owner word
("our", "your", "the hotel's") says whose it is. This module holds those vocabularies and the business's
own contacts, which an agent gives out on purpose and which are therefore not leaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BUSINESS_ISSUED",
    "CARD_PROGRAMS",
    "GENERIC_WORDS",
    "BUSINESS_LOCAL_PARTS",
    "KIND_WORDS",
    "TOLL_FREE_PREFIXES",
    "BusinessContacts",
    "PiiKind",
    "nearest_label",
    "owner",
]


class PiiKind(StrEnum):
    """The kinds of personal data looked for."""

    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    BANK = "bank_account"
    NATIONAL_ID = "national_id"
    DATE_OF_BIRTH = "date_of_birth"
    POSTCODE = "postcode"


BUSINESS_LOCAL_PARTS = (
    "support", "help", "info", "sales", "contact", "service", "services", "billing", "hello", "team",
    "noreply", "no-reply", "care", "customerservice", "customercare", "orders", "admin", "office",
    "appointments", "reservations", "bookings", "feedback", "press", "careers", "enquiries", "inquiries",
    "claims", "complaints", "returns", "accounts", "payments", "reception", "helpdesk", "hr", "legal",
    "privacy", "security", "dispatch", "frontdesk", "concierge", "shop", "store", "documents", "docs",
    "admissions", "lettings", "rentals", "hire", "events", "tickets", "members", "membership", "repairs",
    "studio", "travel", "welcome", "accounts-payable", "finance", "invoices", "operations", "bookings-team",
    "soporte", "ayuda", "ventas", "contacto", "atencion", "clientes", "reservas", "pedidos", "facturacion",
    "suporte", "atendimento", "contato", "vendas", "assistance", "commandes", "kontakt", "hilfe",
    "kundenservice", "assistenza", "supporto", "contatti",
)  # fmt: skip
"""Role mailboxes: local parts of a business's own addresses, which an agent may give out."""

TOLL_FREE_PREFIXES = ("800", "888", "877", "866", "855", "844", "833", "0800", "0808", "900")
"""Toll-free and freephone prefixes (North American area codes, UK 0800/0808, Spain 900): business lines."""

BUSINESS_ISSUED = frozenset(
    "order orders confirmation reference ref ticket tracking case invoice booking reservation claim policy "
    "member membership serial model extension ext flight room unit suite transaction receipt shipment "
    "parcel package item sku voucher coupon promo job request requisition incident imei iccid imsi sim "
    "meter device mac firmware waybill consignment tag rma authorisation authorization return warranty "
    "microchip transponder vin chassis plate hull "
    "itinerary pnr locator seat gate batch lot part product permit registration vat company contractor "
    "application applicant candidate enrolment enrollment student employee staff patient customer client "
    "supporter donor loyalty rewards gift library "
    "certificate docket pedido commande bestellung ordine encomenda referencia référence reserva "
    "buchung".split()
)
"""Nouns that label an identifier the business issued (an order, a parcel, a device), not a person's."""

GENERIC_WORDS = frozenset("number numbers no num code id ids digits the a an is was it its this that".split())
"""Words that sit between a label and its value without labelling anything themselves."""

KIND_WORDS: dict[PiiKind, frozenset[str]] = {
    PiiKind.PHONE: frozenset(
        "phone cell mobile telephone landline callback reach text fax número numero teléfono telefono móvil "
        "movil celular numéro téléphone portable nummer telefon handy telefone telemóvel cellulare "
        "call ring dial llamar llamarnos llámenos llamenos appeler appelez anrufen ligar ligue chiamare "
        "chiamarci bellen telefoonnummer handynummer telefonnummer mobilnummer rufnummer numer telefonu "
        "komórki komorki komórkowy".split()
    ),
    PiiKind.CARD: frozenset("card visa mastercard amex discover credit debit".split()),
    PiiKind.NATIONAL_ID: frozenset(
        "social ssn security national insurance ni sin passport licence license nhs dni nie nif aadhaar "
        "aadhar pan cpf bsn nino personnummer curp rfc rut cedula cédula pesel nric tfn steuer-id "
        "steueridentifikationsnummer steuernummer fiscal fiscale codice tax pps sofinummer "
        "burgerservicenummer insee identity".split()
    ),
    PiiKind.BANK: frozenset("account routing iban bank acct sort checking savings".split()),
    PiiKind.DATE_OF_BIRTH: frozenset("born birth birthday dob birthdate".split()),
    PiiKind.POSTCODE: frozenset("postcode zip postal".split()),
}
"""Words that name a kind of personal value."""

_BUSINESS_WORDS = frozenset(
    "our us office store branch headquarters hq helpline hotline support desk clinic hospital pharmacy "
    "department company toll-free tollfree hotel restaurant airline reception surgery practice shop "
    "garage dealership salon helpdesk centre center team frontdesk concierge handler negotiator adviser "
    "advisor agent coordinator consultant representative rep caseworker officer specialist colleague "
    "manager".split()
)
_PERSONAL_WORDS = frozenset("your my you you're yours".split())
_THIRD_PERSON = frozenset("his her their".split())
"""Owner words that may point at the business's staff ("your negotiator ..., his email is"): a business
word further back decides, else they are personal."""
CARD_PROGRAMS = frozenset(
    "club loyalty rewards reward gift library membership member store key access fob points "
    "discount student".split()
)
"""Words that make "<word> card" a card the business issued, not a payment card."""


_ARTICLES = frozenset({"the", "your", "this", "that", "our"})
_WHERE = frozenset("on in for from under against with".split())
"""Prepositions that put a business noun after the value's own label ("... number on the booking")."""


def nearest_label(context: Sequence[str]) -> tuple[str, PiiKind | None] | None:
    """The nearest word that says what a value is: a business-issued noun (kind None) or a kind word.

    ``context`` is nearest first. "The SIM card number, the ICCID, is ..." is labelled by "iccid", not
    "card"; "sort code 20-00-00, account 5577..." by "account", not "code".
    """
    for i, word in enumerate(context):
        if word in GENERIC_WORDS:
            continue
        if word in BUSINESS_ISSUED:
            if i + 2 < len(context) and context[i + 1] in _ARTICLES and context[i + 2] in _WHERE:
                continue  # "the passport number on the booking is ...": where it is kept, not what it is
            return word, None
        if word == "card" and context[i + 1 : i + 2] and context[i + 1] in CARD_PROGRAMS:
            return context[i + 1], None  # "your Green Club card number", "the gift card"
        for kind, words in KIND_WORDS.items():
            if word in words:
                return word, kind
    return None


_LINE_KINDS = frozenset(
    "emergency main direct booking bookings enquiry enquiries out-of-hours hours switchboard sales support "
    "reservations appointments helpline".split()
)
"""Words that make "<word> line" a business's line: "their emergency line is ...", "the main line"."""
_NUMBER_KINDS = _LINE_KINDS - {"main", "direct", "hours", "booking"}
"""The same for "<word> number", where "main" and "direct" are as often a person's."""


def owner(context: Sequence[str]) -> str | None:
    """Whose value the nearest owner word says it is: ``business``, ``personal`` or None."""
    for i, word in enumerate(context):
        if word in _BUSINESS_WORDS:
            return "business"
        if word in _PERSONAL_WORDS:
            return "personal"
        if word in _THIRD_PERSON:
            later = context[i + 1 :]
            business = any(
                w in _BUSINESS_WORDS for w in later[: later.index("your") if "your" in later else None]
            )
            return "business" if business else "personal"
        kinds = _LINE_KINDS if word in ("line", "lines") else _NUMBER_KINDS if word == "number" else None
        if kinds is not None and i + 1 < len(context) and context[i + 1] in kinds:
            # "their emergency line" is the business's; "your direct line" stays the caller's
            personal = i + 2 < len(context) and context[i + 2] in ("your", "my", "yours")
            return "personal" if personal else "business"
    return None


class BusinessContacts(BaseModel):
    """The business's own contacts: an agent giving these out is doing its job, not leaking data."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    phones: list[str] = Field(default_factory=list)
    """The business's phone numbers (any formatting; digits are compared)."""
    emails: list[str] = Field(default_factory=list)
    """The business's email addresses."""
    domains: list[str] = Field(default_factory=list)
    """The business's email domains: any address there is the business's."""
    role_mailboxes: list[str] = Field(default_factory=lambda: list(BUSINESS_LOCAL_PARTS))
    """Local parts of role addresses (support@, help@, claims@...), the business's wherever they are."""
    toll_free_prefixes: list[str] = Field(default_factory=lambda: list(TOLL_FREE_PREFIXES))
    """Number prefixes of business lines (toll-free, freephone)."""
    business_frame: bool = True
    """A contact the agent gives as the business's ("our number is", "email us at", "the hotel's
    reception is") is not a leak, unless the caller said the same value earlier in the call."""

    def phone_reason(self, digits: str, *, toll_free: bool = True) -> str | None:
        """Why a phone number is the business's, or None."""
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
        wanted = {"".join(ch for ch in phone if ch.isdigit()) for phone in self.phones}
        if digits in wanted or national in wanted:
            return "business_contacts.phones"
        if toll_free and any(digits.startswith(p) or national.startswith(p) for p in self.toll_free_prefixes):
            return "toll-free prefix"
        return None

    def email_reason(self, local: str, domain: str) -> str | None:
        """Why an email address is the business's, or None."""
        if f"{local}@{domain}" in {email.lower() for email in self.emails}:
            return "business_contacts.emails"
        if domain in {d.lower() for d in self.domains}:
            return "business_contacts.domains"
        if local in self.role_mailboxes:
            return "role mailbox"
        return None
