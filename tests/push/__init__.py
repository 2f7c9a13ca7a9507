"""Change-driven sync: the receiver, its attacks and HTTPS front, channels, the soak."""
