"""Values of the consent domain that are persisted.

The string values are stored in the database and sent to clients: never rename or reuse one.
Adding a value needs an Alembic migration, because the tables carry CHECK constraints on them.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Generation", "Language", "RevokedBy", "State"]


class State(StrEnum):
    """Where a consent request stands. The transitions live in ``machine.py``."""

    PENDING = "pending"  # accepted from the client; the person has not been sent to Altinn yet
    REDIRECTED = "redirected"  # an Altinn request exists and the person was sent there
    GRANTED = "granted"  # confirmed with Altinn and Maskinporten; data may be fetched
    DENIED = "denied"  # the person refused in Altinn
    EXPIRED = "expired"  # valid_to passed, before or after a grant
    REVOKED = "revoked"  # a grant ended early: end user, Skatteetaten -007 or an admin
    CANCELLED = "cancelled"  # the client withdrew the request or its grant
    FAILED = "failed"  # the flow cannot complete (upstream refused, broken return, …)


class Generation(StrEnum):
    ALTINN3 = "altinn3"
    ALTINN2 = "altinn2"


class RevokedBy(StrEnum):
    END_USER = "end_user"
    SKATTEETATEN = "skatteetaten"
    ADMIN = "admin"
    CLIENT = "client"


class Language(StrEnum):
    NB = "nb"
    NN = "nn"
    EN = "en"
