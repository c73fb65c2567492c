"""Server entry: ``uvicorn broker.asgi:app`` (``broker serve`` does the same with its own loop)."""

from broker.app import create_app
from broker.logs import configure_logging
from broker.settings import Settings

_settings = Settings.from_env()
configure_logging(_settings.log_level, redact=_settings.secret_values())
app = create_app(_settings)
