"""The one exception type for bad user input: the CLI turns it into exit code 2 and one line."""

import os
import re

from sweeplab.secrets import hide_passwords


class ConfigError(ValueError):
    """Bad input found before any work starts; the message says what is wrong and what is allowed.

    Its text never shows a password: that of any URL in it (an override, a store) is hidden."""

    def __str__(self) -> str:
        return hide_passwords(super().__str__())


def cause_line(error: BaseException) -> str:
    """The first line of what really went wrong behind a wrapper (e.g. Hydra's InstantiationException);
    a `_target_` that cannot be imported says which module is missing and how to make it importable."""
    cause = error.__cause__ or error
    if isinstance(cause, ImportError) and cause is not error and "Error loading '" in str(cause):
        return _import_line(cause)
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _import_line(error: ImportError) -> str:
    """Hydra's "Error loading 'a.b.C':" (and the real error on the next line) as one line a user can act on."""
    text = str(error)
    target = text.split("'")[1]
    missing = error.__cause__
    name = getattr(missing, "name", None) if isinstance(missing, ModuleNotFoundError) else None
    if name == target:
        parent, _, attribute = target.rpartition(".")
        return f"cannot import {target}: {parent} has no {attribute}"
    if name and (target.startswith(f"{name}.") or target == name):
        if "." in name:
            return f"cannot import {target}: there is no module {name}"
        path = os.environ.get("PYTHONPATH")
        where = f"PYTHONPATH={path}" if path else "PYTHONPATH is not set"
        return (f"cannot import {target}: Python finds no module named '{name}' ({where}); if it is your code, "
                f"put the folder holding {name}.py (or {name}/) on PYTHONPATH, e.g. run `PYTHONPATH=. sweeplab ...` "
                "in that folder")
    if name:
        return f"cannot import {target}: importing it needs module '{name}', which is not installed"
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return f"cannot import {target}: {lines[0] if lines else type(missing).__name__}"


def explain_instantiation(error: BaseException, cfg) -> str:
    """One line for an object of the config that could not be built (Hydra's InstantiationException):
    which config key, and what went wrong. A constructor's complaint about one of its arguments names
    that argument's key, or the key it takes its value from (`dropout: ${model.dropout}`: model.dropout)."""
    line = cause_line(error)
    found = re.search(r"full_key: (\S+)", str(error))
    if not found:
        return line
    node_key = found.group(1)
    if isinstance(error.__cause__, ImportError):
        return f"{node_key}._target_: {line}"
    if re.search(r"\b\w+\.[\w.]+=", line):   # already names its key (model.dropout=1.5: ...)
        return line
    argument = _argument_key(cfg, node_key, line)
    return f"{argument}: {line}" if argument else f"{node_key}: {line}"


def _argument_key(cfg, node_key: str, message: str) -> str | None:
    """`KEY=VALUE` for the one argument of config node `node_key` that `message` names, if exactly one."""
    from omegaconf import DictConfig, OmegaConf

    node = OmegaConf.select(cfg, node_key)
    if not isinstance(node, DictConfig):
        return None
    raw = OmegaConf.to_container(node, resolve=False)
    named = [k for k in raw if isinstance(k, str) and not k.startswith("_")
             and re.search(rf"\b{re.escape(k)}\b", message, re.IGNORECASE)]
    if len(named) != 1:
        return None
    value = raw[named[0]]
    source = re.fullmatch(r"\$\{([\w.]+)\}", value.strip()) if isinstance(value, str) else None
    key = source.group(1) if source else f"{node_key}.{named[0]}"
    return f"{key}={OmegaConf.select(cfg, key)}"
