"""``python -m finchan``: the same as the ``finchan`` command."""

from finchan.cli import main

if __name__ == "__main__":
    main(prog_name="finchan")
