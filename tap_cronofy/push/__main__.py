"""`python -m tap_cronofy.push`: the `tap-cronofy-push` command."""

from tap_cronofy.push.cli import main

main()
