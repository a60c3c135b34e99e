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


def train_seeds_module():
    """``tools/train_seeds.py`` as a module: the stored seed results are checked through it."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "train_seeds.py"
    spec = importlib.util.spec_from_file_location("train_seeds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
