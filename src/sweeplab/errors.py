"""The one exception type for bad user input: the CLI turns it into exit code 2 and one line."""


class ConfigError(ValueError):
    """Bad input found before any work starts; the message says what is wrong and what is allowed."""
