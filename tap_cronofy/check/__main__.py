"""``python -m tap_cronofy.check``: the same as ``tap-cronofy-check``."""

from tap_cronofy.check.cli import main

main()
