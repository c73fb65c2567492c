"""HTML of the fake consent page: plain forms, no script, every value escaped.

Labels and button texts are stable for browser tests: the person select is labelled
"Log in as", the answers are the buttons "Approve" and "Reject".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "ConsentView",
    "RightView",
    "consent_page",
    "login_page",
    "message_page",
    "refusal_page",
]

_STYLE = (
    "body{font-family:sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}"
    "form.inline{display:inline-block;margin-right:1rem}"
    "dt{font-weight:bold}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="nb"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - Altinn (sandbox)</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>\n"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def _logout_form(action: str, return_to: str) -> str:
    return (
        f'<form method="post" action="{escape(action)}">{_hidden("return_to", return_to)}'
        '<button type="submit">Log in as someone else</button></form>'
    )


def login_page(action: str, consent_id: str, persons: Sequence[tuple[str, str]]) -> str:
    """``persons`` are (fnr, name) pairs of the synthetic persons."""
    options = "".join(
        f'<option value="{escape(fnr)}">{escape(name)} ({escape(fnr)})</option>'
        for fnr, name in persons
    )
    body = (
        "<p>Logg inn for å svare på forespørselen. / Log in to answer the request.</p>"
        f'<form method="post" action="{escape(action)}">{_hidden("id", consent_id)}'
        f'<label for="person">Log in as</label> <select id="person" name="person">{options}'
        '</select> <button type="submit">Log in</button></form>'
    )
    return _page("Samtykke / Consent", body)


@dataclass(frozen=True)
class RightView:
    title: str
    resource_id: str
    actions: str
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConsentView:
    consent_id: str
    requester: str
    handled_by: str | None
    subject: str
    valid_to: str
    rights: tuple[RightView, ...]
    message: str | None
    user: str


def _rights(rights: Sequence[RightView]) -> str:
    items = []
    for right in rights:
        meta = "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in right.metadata)
        items.append(
            f"<li>{escape(right.title)} (<code>{escape(right.resource_id)}</code>), "
            f"action: {escape(right.actions)}{f'<ul>{meta}</ul>' if meta else ''}</li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _answer_form(action: str, csrf: str, label: str) -> str:
    return (
        f'<form class="inline" method="post" action="{escape(action)}">{_hidden("csrf", csrf)}'
        f'<button type="submit" name="answer" value="{escape(label.lower())}">{label}</button>'
        "</form>"
    )


def consent_page(view: ConsentView, *, approve: str, reject: str, csrf: str) -> str:
    handled = (
        f"<dt>Behandles av / Handled by</dt><dd>{escape(view.handled_by)}</dd>"
        if view.handled_by
        else ""
    )
    message = f"<p>{escape(view.message)}</p>" if view.message else ""
    body = (
        f"<p>Logget inn som / Logged in as: <strong>{escape(view.user)}</strong></p>"
        f"<p><strong>{escape(view.requester)}</strong> ber om samtykke fra / asks for consent "
        f"from <strong>{escape(view.subject)}</strong>.</p>{message}"
        f"<dl><dt>Forespurt av / Requested by</dt><dd>{escape(view.requester)}</dd>{handled}"
        f"<dt>Gjelder / On behalf of</dt><dd>{escape(view.subject)}</dd>"
        f"<dt>Data</dt><dd>{_rights(view.rights)}</dd>"
        f"<dt>Gyldig til / Valid to</dt><dd>{escape(view.valid_to)}</dd></dl>"
        "<p>Godta eller avslå / Approve or reject:</p>"
        f"{_answer_form(approve, csrf, 'Approve')}{_answer_form(reject, csrf, 'Reject')}"
    )
    return _page("Samtykke / Consent", body)


def refusal_page(user: str, reason: str, *, logout: str, return_to: str) -> str:
    body = (
        f"<p>Logget inn som / Logged in as: <strong>{escape(user)}</strong></p>"
        f'<p role="alert">Du har ikke tilgang. / Access denied: {escape(reason)}</p>'
        f"{_logout_form(logout, return_to)}"
    )
    return _page("Ingen tilgang / Access denied", body)


def message_page(title: str, message: str, *, link: tuple[str, str] | None = None) -> str:
    extra = ""
    if link is not None:
        extra = f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>'
    return _page(title, f'<p role="status">{escape(message)}</p>{extra}')
