"""The streams against the simulator: records, keys, faults and retries, real answer shapes."""
