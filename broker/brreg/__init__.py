"""Enhetsregisteret (Brønnøysundregistrene): organisation names, for Altinn 2's OfferedByName."""
