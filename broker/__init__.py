"""ebevis-broker: consent broker for Skatteetaten's 'Oppdrag utenlandske virksomheter' API."""

__version__ = "0.1.0"
