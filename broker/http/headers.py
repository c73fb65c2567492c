"""Headers for anything a browser may render or follow."""

from __future__ import annotations

__all__ = ["BROWSER_HEADERS"]

# Never framed (clickjacking on the consent flow; Skatteetaten forbids wrapping the dialog),
# never sniffed, no Referer leaking our URLs onward. Cache-Control is added where not set.
BROWSER_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
