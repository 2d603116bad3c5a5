"""Override text for Hydra: values written so that Hydra reads them back unchanged.

Shared below the sweep: the composer quotes `sweep.warm_start=NAME,K` before Hydra sees it, and the
search space and the plugin's older `search_space:` form write values as override text.
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Quote, QuotedString, Transformer, ValueType
from hydra.errors import HydraException

WARM_START_KEY = "sweep.warm_start"   # its value `NAME,K` holds a comma (sweep/warm_start_value.py reads it)


def quote_override(overrides: list[str]) -> list[str]:
    """`sweep.warm_start=NAME,K` passed to Hydra as the string 'NAME,K': Hydra reads an unquoted comma as a
    multirun sweep and refuses it outside --multirun."""
    quoted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == WARM_START_KEY and "," in value and not value.startswith(("'", '"', "[")):
            override = f"{key}='{value}'"
        quoted.append(override)
    return quoted


def hydra_text(value: Any) -> str:
    """Override text that Hydra parses back to the same value with the same type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_text(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{Transformer.str(k)}:{hydra_text(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"a {type(value).__name__} value cannot be an override")


def _string_text(value: str) -> str:
    # Quote only when the bare text would read back as something else ("1", "true", "null", "a,b"...).
    bare = Transformer.str(value)
    try:
        [override] = OverridesParser.create().parse_overrides([f"x={bare}"])
        back = override.value()
        if override.value_type is ValueType.ELEMENT and isinstance(back, str) and back == value:
            return bare
    except HydraException:
        pass
    return QuotedString(text=value, quote=Quote.single).with_quotes()
