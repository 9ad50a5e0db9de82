"""``python -m workerkit.cli``: the same as the ``fleet`` console script."""

from workerkit.cli import main

main()
