"""Fixtures of the app tests: ``generation`` runs a test once per Altinn generation."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["altinn3", "altinn2"])
def generation(request: pytest.FixtureRequest) -> str:
    """The Altinn generation of the stack's tenants (BROKER_ALTINN_GENERATION): the consent-flow
    security tests hold for both, through the same client API and browser routes."""
    value = request.param
    assert isinstance(value, str)
    return value
