"""``python -m benchmarks --device cpu --json results.json`` (``--help`` for the options)."""

from benchmarks.runner import main

if __name__ == "__main__":
    main()
