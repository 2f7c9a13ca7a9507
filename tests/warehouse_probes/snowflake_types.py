"""Run inside target-snowflake's own venv: how it types each catalog column (no network)."""

import json
import sys

from snowflake.sqlalchemy.base import SnowflakeIdentifierPreparer
from snowflake.sqlalchemy.snowdialect import SnowflakeDialect
from target_snowflake.connector import DEFAULT_RESERVED_WORDS, SnowflakeConnector

with open(sys.argv[1]) as handle:
    catalog = json.load(handle)
connector = SnowflakeConnector(config={"account": "x", "user": "u", "password": "p"})
dialect = SnowflakeDialect()
types = {
    stream["tap_stream_id"]: {
        name: str(connector.to_sql_type(prop).compile(dialect=dialect))
        for name, prop in stream["schema"]["properties"].items()
    }
    for stream in catalog["streams"]
}
preparer = SnowflakeIdentifierPreparer(dialect)
preparer.reserved_words |= DEFAULT_RESERVED_WORDS
quoted = {word: preparer.format_collation(word) for word in ("start", "end", "account_id")}
print(json.dumps({"types": types, "identifiers": quoted}))
