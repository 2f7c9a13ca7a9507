"""Many processes: shards, Dagster, one token store, one quota shared with the product."""
