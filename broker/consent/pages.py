"""Plain HTML pages for the person in the browser, in the request's language (nb, nn, en)."""

from __future__ import annotations

from html import escape

from broker.consent.model import Language

__all__ = ["person_page"]

_TEXTS: dict[str, dict[Language, tuple[str, str]]] = {
    "link_invalid": {
        Language.NB: (
            "Lenken virker ikke",
            "Lenken er ugyldig. Gå tilbake til tjenesten du kom fra og start på nytt.",
        ),
        Language.NN: (
            "Lenkja verkar ikkje",
            "Lenkja er ugyldig. Gå tilbake til tenesta du kom frå og start på nytt.",
        ),
        Language.EN: (
            "The link does not work",
            "The link is not valid. Go back to the service you came from and start again.",
        ),
    },
    "link_expired": {
        Language.NB: (
            "Lenken er utløpt",
            "Lenken er for gammel. Gå tilbake til tjenesten du kom fra og start på nytt.",
        ),
        Language.NN: (
            "Lenkja er gått ut",
            "Lenkja er for gammal. Gå tilbake til tenesta du kom frå og start på nytt.",
        ),
        Language.EN: (
            "The link has expired",
            "The link is too old. Go back to the service you came from and start again.",
        ),
    },
    "request_closed": {
        Language.NB: (
            "Forespørselen er avsluttet",
            "Denne samtykkeforespørselen kan ikke lenger besvares.",
        ),
        Language.NN: (
            "Førespurnaden er avslutta",
            "Denne samtykkeførespurnaden kan ikkje lenger svarast på.",
        ),
        Language.EN: ("The request is closed", "This consent request can no longer be answered."),
    },
    "return_invalid": {
        Language.NB: (
            "Svaret kunne ikke tas imot",
            "Svaret kom ikke fra samme nettleser som startet forespørselen, eller lenken er endret. Start på nytt fra tjenesten du kom fra.",
        ),
        Language.NN: (
            "Svaret kunne ikkje takast imot",
            "Svaret kom ikkje frå same nettlesar som starta førespurnaden, eller lenkja er endra. Start på nytt frå tenesta du kom frå.",
        ),
        Language.EN: (
            "The answer could not be accepted",
            "The answer did not come from the browser that started the request, or the link was changed. Start again from the service you came from.",
        ),
    },
    "return_expired": {
        Language.NB: (
            "Tiden gikk ut",
            "Det tok for lang tid. Start på nytt fra tjenesten du kom fra.",
        ),
        Language.NN: (
            "Tida gjekk ut",
            "Det tok for lang tid. Start på nytt frå tenesta du kom frå.",
        ),
        Language.EN: (
            "Time ran out",
            "This took too long. Start again from the service you came from.",
        ),
    },
    "return_used": {
        Language.NB: (
            "Svaret er allerede mottatt",
            "Dette svaret er allerede registrert. Du kan lukke denne siden.",
        ),
        Language.NN: (
            "Svaret er allereie motteke",
            "Dette svaret er allereie registrert. Du kan lukke denne sida.",
        ),
        Language.EN: (
            "The answer was already received",
            "This answer has already been recorded. You can close this page.",
        ),
    },
    "try_again": {
        Language.NB: (
            "Prøv igjen om litt",
            "Altinn eller Maskinporten svarer ikke akkurat nå. Last inn siden på nytt om litt.",
        ),
        Language.NN: (
            "Prøv igjen om litt",
            "Altinn eller Maskinporten svarar ikkje akkurat no. Last inn sida på nytt om litt.",
        ),
        Language.EN: (
            "Please try again shortly",
            "Altinn or Maskinporten is not answering right now. Reload this page in a little while.",
        ),
    },
    "altinn_refused": {
        Language.NB: (
            "Forespørselen ble avvist",
            "Altinn avviste samtykkeforespørselen. Tjenesten du kom fra har fått beskjed.",
        ),
        Language.NN: (
            "Førespurnaden vart avvist",
            "Altinn avviste samtykkeførespurnaden. Tenesta du kom frå har fått melding.",
        ),
        Language.EN: (
            "The request was refused",
            "Altinn refused the consent request. The service you came from has been told.",
        ),
    },
}


def person_page(kind: str, language: Language) -> str:
    title, message = _TEXTS.get(kind, _TEXTS["link_invalid"])[language]
    return (
        f'<!doctype html><html lang="{language.value}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
        f'<p role="status">{escape(message)}</p></main></body></html>\n'
    )
