"""The one check of display colours written as hex strings (rig TOML, model card, viewer settings, recordings)."""

from __future__ import annotations

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_hex_colour(value: object, *, hash_optional: bool = False) -> bool:
    """Whether ``value`` is a ``#RRGGBB`` string; with ``hash_optional`` also ``RRGGBB`` (OME's form)."""
    if not isinstance(value, str):
        return False
    digits = value[1:] if value.startswith("#") else (value if hash_optional else "")
    return len(digits) == 6 and all(c in _HEX_DIGITS for c in digits)
