"""Strict local fakes of Maskinporten, Altinn and Skatteetaten.

This package imports nothing from the rest of ``broker``: it is an independent reading of the
specifications in ``shared/reference`` (import-linter enforces the rule).
"""
