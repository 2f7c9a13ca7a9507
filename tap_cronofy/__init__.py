"""Singer tap for the Cronofy API."""
