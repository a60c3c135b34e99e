"""Helpers shared by the differential tests (importable because pytest puts tests/ on sys.path)."""


def raised(build) -> BaseException:
    """The exception ``build()`` raises; the test fails when it raises nothing.

    The exception-type parity tests compare the class rlmods raises with torchrl's, so a torchrl
    user's ``except`` clause keeps working: whatever is raised must be captured, not filtered.
    """
    try:
        build()
    except Exception as error:  # noqa: BLE001 - the class itself is what the tests compare
        return error
    raise AssertionError("expected an exception, none was raised")
