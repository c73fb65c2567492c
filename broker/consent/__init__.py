"""The consent flow: a pure core (model, machine, ports) and its shell (service, routes)."""
