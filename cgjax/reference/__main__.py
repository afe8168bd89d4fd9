"""``python -m cgjax.reference SYSTEM --out FILE ...``; see ``--help``."""

from cgjax.reference._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
