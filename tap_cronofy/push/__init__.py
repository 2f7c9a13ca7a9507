"""Change-driven sync's receiving side: Cronofy's push notifications checked (signature.py),
received into the change log (receiver.py), channels provisioned (channels.py), and the
`tap-cronofy-push` command (cli.py). The change log itself (tap_cronofy/changelog.py) stays
in the core, which reads it; no core module imports from here."""
