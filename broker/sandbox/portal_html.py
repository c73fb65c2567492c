"""HTML of the demo portal: plain forms, no script, every value escaped.

Texts and ids are stable for browser tests. The start form has the selects labelled
"Contracting authority (requestor)" (``#requestor``) and "Supplier (subject)" (``#subject``), the
text field "Reference" (``#reference``), the select "Language" (``#language``) and the button
"Ask for consent". The detail page shows the API's status in ``#status`` and the history in
``table#history`` and, once granted, the link "Fetch the data" (``#fetch-data``). The data page
shows ``#signature`` ("Signature verified", class ``verified``; or the failure, class
``failed``, and no data), the counts in ``#count-<name>``, ``#data-subject``, ``#data-levert``,
``#data-korrelasjonsid`` and ``#data-request-id``; an error page shows a problem in
``#problem-title``, ``#problem-detail`` and ``#problem-code``. The webhooks page lists the
deliveries received in ``table#webhooks`` (one row per delivery, class ``verified`` or
``refused``, the result in ``td.result``), or ``#no-webhooks``; the start page links to it
(``#webhooks-link``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Protocol

__all__ = [
    "LANGUAGES",
    "ConsentRequest",
    "Grant",
    "HistoryEntry",
    "OppdragData",
    "PortalEntry",
    "Problem",
    "data_page",
    "detail_page",
    "form_page",
    "message_page",
    "problem_page",
    "webhooks_page",
]

LANGUAGES = (("nb", "Norsk bokmål (nb)"), ("nn", "Norsk nynorsk (nn)"), ("en", "English (en)"))

_STYLE = (
    "body{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
    "label{display:block;font-weight:bold;margin-top:1rem}"
    "button{margin-top:1rem}"
    "table{border-collapse:collapse}th,td{border:1px solid #999;padding:.25rem .5rem;"
    "text-align:left}"
    "dt{font-weight:bold}"
    ".errors{border:2px solid #b00;padding:.5rem 1rem}"
)


@dataclass(frozen=True)
class Grant:
    consented_at: str
    valid_to: str
    revoked_at: str | None
    revoked_by: str | None


@dataclass(frozen=True)
class ConsentRequest:
    """The broker's consent request object, as far as the portal shows it."""

    id: str
    status: str
    requestor: str
    subject: str
    reference: str
    language: str
    valid_to: str
    consent_url: str | None
    created_at: str
    updated_at: str
    status_reason: str | None
    grant: Grant | None


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    action: str
    state: str | None  # None for entries that change no status (a data fetch, a withdrawal)
    reason: str | None


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem from the broker (or the portal's own), safe to show."""

    status: int
    title: str
    detail: str
    code: str


@dataclass(frozen=True)
class OppdragData:
    """Skatteetaten's answer as the relay gave it, after its signature verified."""

    subject: str | None
    counts: Sequence[tuple[str, int | None]]
    levert: str | None
    korrelasjonsid: str | None
    request_id: str | None
    kid: str


@dataclass(frozen=True)
class PortalEntry:
    """A request this portal created."""

    id: str
    requestor: str
    subject: str
    reference: str
    created_at: str


def _page(title: str, body: str, *, prefix: str) -> str:
    home = f'<p><a href="{escape(prefix)}/">Back to the portal</a></p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - ebevis sandbox</title>"
        f"<style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}{home}</main></body></html>\n"
    )


def _time(value: str | None) -> str:
    """An ISO 8601 instant as ``<time>``, shown in UTC; any other text as it is."""
    if value is None:
        return ""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return escape(value)
    if instant.tzinfo is None:
        return escape(value)
    shown = instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{escape(value)}">{shown}</time>'


def _options(choices: Sequence[tuple[str, str]], selected: str | None) -> str:
    return "".join(
        f'<option value="{escape(value)}"{" selected" if value == selected else ""}>'
        f"{escape(text)}</option>"
        for value, text in choices
    )


def _select(
    name: str, label: str, choices: Sequence[tuple[str, str]], values: Mapping[str, str]
) -> str:
    return (
        f'<label for="{name}">{escape(label)}</label>'
        f'<select id="{name}" name="{name}" required>{_options(choices, values.get(name))}</select>'
    )


def _errors(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{escape(e)}</li>" for e in errors)
    return (
        '<div class="errors" role="alert" id="form-errors"><h2>Please correct the form</h2>'
        f"<ul>{items}</ul></div>"
    )


def _requests_table(
    prefix: str, entries: Sequence[PortalEntry], party: Callable[[str], str]
) -> str:
    if not entries:
        return '<p id="no-requests">No requests yet.</p>'
    rows = "".join(
        f'<tr><td><a href="{escape(prefix)}/requests/{escape(e.id)}">{escape(e.id)}</a></td>'
        f"<td>{escape(party(e.requestor))}</td><td>{escape(party(e.subject))}</td>"
        f"<td>{escape(e.reference)}</td><td>{_time(e.created_at)}</td></tr>"
        for e in entries
    )
    return (
        '<table id="requests"><caption>Newest first; open one to see its status.</caption>'
        '<thead><tr><th scope="col">Request (status)</th>'
        '<th scope="col">Contracting authority</th><th scope="col">Supplier</th>'
        '<th scope="col">Reference</th><th scope="col">Created</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def form_page(
    *,
    prefix: str,
    csrf: str,
    idempotency_key: str,
    authorities: Sequence[tuple[str, str]],
    suppliers: Sequence[tuple[str, str]],
    entries: Sequence[PortalEntry],
    party: Callable[[str], str],
    values: Mapping[str, str] | None = None,
    errors: Sequence[str] = (),
) -> str:
    """The start form and the list of requests. ``authorities``/``suppliers``: (orgnr, label)."""
    values = values or {}
    invalid = ' aria-invalid="true"' if "reference" in values and errors else ""
    reference = escape(values.get("reference", ""))
    body = (
        "<p>Ask a foreign supplier for consent to read its assignments (oppdrag) at "
        "Skatteetaten. The portal calls the broker's API; the supplier answers in Altinn.</p>"
        f"{_errors(errors)}"
        f'<form id="start-form" method="post" action="{escape(prefix)}/start">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="idempotency_key" value="{escape(idempotency_key)}">'
        f"{_select('requestor', 'Contracting authority (requestor)', authorities, values)}"
        f"{_select('subject', 'Supplier (subject)', suppliers, values)}"
        '<label for="reference">Reference</label>'
        f'<input id="reference" name="reference" type="text" maxlength="200" required'
        f' aria-describedby="reference-hint"{invalid} value="{reference}">'
        '<span id="reference-hint"> At most 200 characters, e.g. a tender number.</span>'
        f"{_select('language', 'Language', LANGUAGES, values)}"
        '<div><button type="submit">Ask for consent</button></div></form>'
        f"<h2>Requests from this portal</h2>{_requests_table(prefix, entries, party)}"
        f'<p><a id="webhooks-link" href="{escape(prefix)}/webhooks">Webhooks received</a></p>'
    )
    return _page("Procurement portal", body, prefix=prefix)


def _row(label: str, value: str, element_id: str | None = None) -> str:
    attribute = f' id="{element_id}"' if element_id else ""
    return f"<dt>{escape(label)}</dt><dd{attribute}>{value}</dd>"


def _grant(grant: Grant | None) -> str:
    if grant is None:
        return ""
    rows = _row("Consented at", _time(grant.consented_at), "grant-consented-at") + _row(
        "Consent valid to", _time(grant.valid_to), "grant-valid-to"
    )
    if grant.revoked_at is not None:
        rows += _row("Revoked at", _time(grant.revoked_at), "grant-revoked-at")
        rows += _row("Revoked by", escape(grant.revoked_by or ""), "grant-revoked-by")
    return f'<h2>Grant</h2><dl id="grant">{rows}</dl>'


def _history(entries: Sequence[HistoryEntry]) -> str:
    rows = "".join(
        f"<tr><td>{_time(e.at)}</td><td>{escape(e.action)}</td><td>{escape(e.state or '')}</td>"
        f"<td>{escape(e.reason or '')}</td></tr>"
        for e in entries
    )
    return (
        '<h2>History</h2><table id="history"><caption>What happened to the request, oldest first'
        '</caption><thead><tr><th scope="col">Time</th><th scope="col">Action</th>'
        '<th scope="col">Status after</th><th scope="col">Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def detail_page(
    *,
    prefix: str,
    request: ConsentRequest,
    history: Sequence[HistoryEntry],
    party: Callable[[str], str],
    returned: bool,
) -> str:
    """One request as the API reports it; ``returned`` adds the note for the return page."""
    hint = (
        '<p id="return-hint">You are back from Altinn. The status below is read from the '
        "broker, not from the link that brought you here.</p>"
        if returned
        else ""
    )
    language = dict(LANGUAGES).get(request.language, request.language)
    reason = request.status_reason
    rows = (
        _row("Status", escape(request.status), "status")
        + (_row("Status reason", escape(reason), "status-reason") if reason else "")
        + _row("Request id", f'<code id="request-id">{escape(request.id)}</code>')
        + _row(
            "Contracting authority (requestor)",
            escape(party(request.requestor)),
            "request-requestor",
        )
        + _row("Supplier (subject)", escape(party(request.subject)), "request-subject")
        + _row("Reference", escape(request.reference), "request-reference")
        + _row("Language", escape(language), "request-language")
        + _row("Answer by", _time(request.valid_to), "request-valid-to")
        + _row("Created", _time(request.created_at), "created-at")
        + _row("Updated", _time(request.updated_at), "updated-at")
    )
    here = f"{escape(prefix)}/requests/{escape(request.id)}"
    links = f'<p><a href="{here}">Refresh this request</a></p>'
    if request.status == "granted":
        links += f'<p><a id="fetch-data" href="{here}/data">Fetch the data</a></p>'
    if (
        request.status in ("pending", "redirected")
        and request.consent_url
        and (request.consent_url.startswith(("https://", "http://")))
    ):
        links += (
            f'<p><a href="{escape(request.consent_url)}">Continue to the consent dialog</a></p>'
        )
    body = f'{hint}<dl id="request">{rows}</dl>{_grant(request.grant)}{_history(history)}{links}'
    return _page("Consent request", body, prefix=prefix)


_COUNT_LABELS = {
    "antallAktiveOppdragSomArbeidsgiver": "Active assignments as employer",
    "antallAktiveArbeidstakere": "Active employees",
    "antallRegistrerteOppdragSomOppdragsgiver": "Registered assignments as client",
}


def data_page(*, prefix: str, request_id: str, data: OppdragData | None, error: str | None) -> str:
    """The fetched data with its verified signature, or the verification failure alone."""
    back = (
        f'<p><a href="{escape(prefix)}/requests/{escape(request_id)}">'
        "Back to the consent request</a></p>"
    )
    if data is None:
        body = (
            '<p id="signature" class="failed" role="alert">Signature NOT verified: '
            f"{escape(error or 'unknown reason')}. The data is not shown.</p>{back}"
        )
        return _page("Skatteetaten data", body, prefix=prefix)
    counts = "".join(
        _row(
            _COUNT_LABELS.get(name, name),
            "" if value is None else str(value),
            f"count-{name}",
        )
        for name, value in data.counts
    )
    rows = (
        _row("Organisation asked about", escape(data.subject or ""), "data-subject")
        + counts
        + _row("Delivered by Skatteetaten (levert)", _time(data.levert), "data-levert")
        + _row(
            "Skatteetaten korrelasjonsid", escape(data.korrelasjonsid or ""), "data-korrelasjonsid"
        )
        + _row("Broker request id", escape(data.request_id or ""), "data-request-id")
    )
    body = (
        f'<p id="signature" class="verified">Signature verified (key {escape(data.kid)}).</p>'
        f'<dl id="data">{rows}</dl>{back}'
    )
    return _page("Skatteetaten data", body, prefix=prefix)


def problem_page(problem: Problem, *, heading: str, prefix: str) -> str:
    """A problem from the broker: its title, detail and code, never anything from the request."""
    body = (
        f'<p role="alert">{escape(heading)}</p><dl id="problem">'
        + _row("Title", escape(problem.title), "problem-title")
        + _row("Detail", escape(problem.detail), "problem-detail")
        + _row("Code", f'<code id="problem-code">{escape(problem.code)}</code>')
        + _row("HTTP status", str(problem.status), "problem-status")
        + "</dl>"
    )
    return _page("The broker refused", body, prefix=prefix)


def message_page(title: str, message: str, *, prefix: str) -> str:
    return _page(title, f'<p role="alert" id="message">{escape(message)}</p>', prefix=prefix)


class Received(Protocol):
    """A webhook delivery as the portal recorded it (``portal_webhooks.ReceivedWebhook``)."""

    @property
    def received_at(self) -> str: ...
    @property
    def webhook_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def revoked_by(self) -> str | None: ...
    @property
    def verified(self) -> bool: ...
    @property
    def result(self) -> str: ...


def webhooks_page(*, prefix: str, received: Sequence[Received]) -> str:
    """The deliveries the portal received, newest first, each with its verification result."""
    intro = (
        "<p>The broker calls this portal back when a request changes. Each delivery is "
        "verified with the Standard Webhooks library against the portal's signing secret; "
        "a repeat of a <code>webhook-id</code> is acknowledged but not processed again.</p>"
    )
    if not received:
        return _page(
            "Webhooks received", intro + '<p id="no-webhooks">None yet.</p>', prefix=prefix
        )
    rows = "".join(
        f'<tr class="{"verified" if r.verified else "refused"}">'
        f"<td>{_time(r.received_at)}</td><td><code>{escape(r.webhook_id)}</code></td>"
        f"<td>{escape(r.event_type)}</td>"
        + (
            f'<td><a href="{escape(prefix)}/requests/{escape(r.request_id)}">'
            f"{escape(r.request_id)}</a></td>"
            if r.request_id
            else "<td></td>"
        )
        + f"<td>{escape(r.status or '')}</td><td>{escape(r.revoked_by or '')}</td>"
        f'<td class="result">{escape(r.result)}</td></tr>'
        for r in received
    )
    table = (
        '<table id="webhooks"><caption>Newest first.</caption><thead><tr>'
        '<th scope="col">Received</th><th scope="col">webhook-id</th><th scope="col">Type</th>'
        '<th scope="col">Request</th><th scope="col">Status</th>'
        '<th scope="col">Revoked by</th><th scope="col">Verification</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    return _page("Webhooks received", intro + table, prefix=prefix)
