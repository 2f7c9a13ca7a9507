{# The only adapter-specific SQL of the project. Timestamps arrive in UTC (PostgreSQL:
   target-postgres stores them as timestamp without time zone, holding UTC; the default
   to_local/from_local read them so). DuckDB and PostgreSQL are built and tested. #}

{% macro to_local(ts, tz) %}{{ return(adapter.dispatch('to_local', 'cronofy_analytics')(ts, tz)) }}{% endmacro %}
{% macro default__to_local(ts, tz) %}timezone({{ tz }}, timezone('UTC', {{ ts }})){% endmacro %}
{% macro duckdb__to_local(ts, tz) %}timezone({{ tz }}, timezone('UTC', {{ ts }})){% endmacro %}
{% macro snowflake__to_local(ts, tz) %}convert_timezone('UTC', {{ tz }}, {{ ts }}::timestamp_ntz){% endmacro %}
{% macro bigquery__to_local(ts, tz) %}datetime(timestamp({{ ts }}), {{ tz }}){% endmacro %}

{# Monday of the ISO week of a local timestamp or date, as a date. #}
{% macro iso_week(value) %}{{ return(adapter.dispatch('iso_week', 'cronofy_analytics')(value)) }}{% endmacro %}
{% macro default__iso_week(value) %}cast(date_trunc('week', {{ value }}) as date){% endmacro %}
{% macro snowflake__iso_week(value) %}cast(date_trunc('week', {{ value }}) as date){% endmacro %}  {# WEEK_START 0/1 = Monday #}
{% macro bigquery__iso_week(value) %}date_trunc(date({{ value }}), isoweek){% endmacro %}

{% macro hours_between(start_ts, end_ts) %}{{ return(adapter.dispatch('hours_between', 'cronofy_analytics')(start_ts, end_ts)) }}{% endmacro %}
{% macro default__hours_between(start_ts, end_ts) %}(date_diff('second', {{ start_ts }}, {{ end_ts }}) / 3600.0){% endmacro %}
{% macro snowflake__hours_between(start_ts, end_ts) %}(datediff('second', {{ start_ts }}, {{ end_ts }}) / 3600.0){% endmacro %}
{% macro postgres__hours_between(start_ts, end_ts) %}(extract(epoch from ({{ end_ts }}) - ({{ start_ts }})) / 3600.0){% endmacro %}
{% macro bigquery__hours_between(start_ts, end_ts) %}(timestamp_diff({{ end_ts }}, {{ start_ts }}, second) / 3600.0){% endmacro %}

{% macro days_between(start_date, end_date) %}{{ return(adapter.dispatch('days_between', 'cronofy_analytics')(start_date, end_date)) }}{% endmacro %}
{% macro default__days_between(start_date, end_date) %}date_diff('day', {{ start_date }}, {{ end_date }}){% endmacro %}
{% macro snowflake__days_between(start_date, end_date) %}datediff('day', {{ start_date }}, {{ end_date }}){% endmacro %}
{% macro postgres__days_between(start_date, end_date) %}(({{ end_date }}) - ({{ start_date }})){% endmacro %}
{% macro bigquery__days_between(start_date, end_date) %}date_diff({{ end_date }}, {{ start_date }}, day){% endmacro %}

{% macro as_date(value) %}cast({{ value }} as date){% endmacro %}

{# A local (naive) timestamp or date in zone tz, as a UTC timestamp: the inverse of to_local. #}
{% macro from_local(ts, tz) %}{{ return(adapter.dispatch('from_local', 'cronofy_analytics')(ts, tz)) }}{% endmacro %}
{% macro default__from_local(ts, tz) %}timezone('UTC', timezone({{ tz }}, cast({{ ts }} as timestamp))){% endmacro %}
{% macro snowflake__from_local(ts, tz) %}convert_timezone({{ tz }}, 'UTC', cast({{ ts }} as timestamp_ntz)){% endmacro %}
{% macro bigquery__from_local(ts, tz) %}datetime(timestamp(datetime({{ ts }}), {{ tz }})){% endmacro %}

{# A date n days later, as a date. #}
{% macro add_days(value, n) %}{{ return(adapter.dispatch('add_days', 'cronofy_analytics')(value, n)) }}{% endmacro %}
{% macro default__add_days(value, n) %}cast({{ value }} + interval '{{ n }} day' as date){% endmacro %}
{% macro snowflake__add_days(value, n) %}dateadd(day, {{ n }}, {{ value }}){% endmacro %}
{% macro bigquery__add_days(value, n) %}date_add({{ value }}, interval {{ n }} day){% endmacro %}
