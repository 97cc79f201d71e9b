"""``python -m pnsq``: the same entry point as the ``pnsq`` console script."""

from __future__ import annotations

from pnsq.cli import main

if __name__ == "__main__":
    main(prog_name="pnsq")
