"""``python -m noisyneuron``: the same as the ``noisyneuron`` console script."""

from noisyneuron.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
