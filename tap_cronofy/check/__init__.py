"""The credentials check: one request per account, a table of what to fix."""
