"""The one exception type for bad user input: the CLI turns it into exit code 2 and one line."""

from sweeplab.tracking.secrets import hide_passwords


class ConfigError(ValueError):
    """Bad input found before any work starts; the message says what is wrong and what is allowed.

    Its text never shows a password: that of any URL in it (an override, a store) is hidden."""

    def __str__(self) -> str:
        return hide_passwords(super().__str__())


def cause_line(error: BaseException) -> str:
    """The first line of what really went wrong behind a wrapper (e.g. Hydra's InstantiationException)."""
    cause = error.__cause__ or error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__
