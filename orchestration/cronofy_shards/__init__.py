"""tap-cronofy's shards under Dagster: one partition per shard, each a `meltano run`."""
