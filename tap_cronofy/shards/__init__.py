"""Scale-out: accounts split into shards run as separate processes, their states split and
merged when the shard count changes, and one Cronofy quota shared by every process."""
