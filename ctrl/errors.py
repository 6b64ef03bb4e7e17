"""The one error type library code raises for bad input; the CLI prints it as one line and exits 2."""


class CtrlError(Exception):
    """Bad input or an impossible request, with a message that says what is wrong and where."""
