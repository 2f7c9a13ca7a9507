"""Run the tap with ``python -m tap_cronofy``."""

from tap_cronofy.tap import TapCronofy

TapCronofy.cli()
