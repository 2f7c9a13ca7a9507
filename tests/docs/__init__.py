"""The manual's walkthroughs, run as written."""
