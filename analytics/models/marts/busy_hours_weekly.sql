-- How booked is each person, ISO week by ISO week, in their own time zone?
-- busy_hours: the union of busy/tentative timed periods (overlapping meetings count once);
-- booked_hours: the plain sum of their durations (what double-counts overlaps);
-- all_day_days: all-day busy periods, reported apart (they are dates, not hours).
-- Each week gets the busy time inside it: blocks and periods are cut at the account's local
-- week boundaries (Monday 00:00 in its zone, DST included), so busy_hours never exceeds
-- booked_hours in any week, by construction. busy_blocks and busy_periods count the pieces
-- inside the week.
{% set busy = "'" ~ var('busy_statuses') | join("', '") ~ "'" %}

with recursive timed as (
    select account_id, account_zone, start_time, end_time
    from {{ ref('stg_free_busy') }}
    where not all_day
      and free_busy_status in ({{ busy }})
      and end_time > start_time
),

ordered as (
    select
        timed.*,
        max(end_time) over (
            partition by account_id
            order by start_time, end_time
            rows between unbounded preceding and 1 preceding
        ) as previous_end
    from timed
),

numbered as (
    select
        ordered.*,
        sum(case when previous_end is null or start_time > previous_end then 1 else 0 end)
            over (
                partition by account_id
                order by start_time, end_time
                rows between unbounded preceding and current row
            ) as island
    from ordered
),

merged as (
    select account_id, account_zone, island, min(start_time) as start_time, max(end_time) as end_time
    from numbered
    group by account_id, account_zone, island
),

spans as (  -- what is measured: the merged blocks (union) and the periods (sum)
    select 'union' as measure, account_id, account_zone, start_time, end_time from merged
    union all
    select 'sum' as measure, account_id, account_zone, start_time, end_time from timed
),

pieces as (  -- each span cut at the local week boundaries it crosses
    select
        measure,
        account_id,
        account_zone,
        start_time as piece_start,
        end_time as span_end,
        {{ iso_week(to_local('start_time', 'account_zone')) }} as week_start
    from spans
    union all
    select
        measure,
        account_id,
        account_zone,
        {{ from_local(add_days('week_start', 7), 'account_zone') }} as piece_start,
        span_end,
        {{ add_days('week_start', 7) }} as week_start
    from pieces
    where {{ from_local(add_days('week_start', 7), 'account_zone') }} < span_end
),

measured as (
    select
        measure,
        account_id,
        week_start,
        {% set week_end = from_local(add_days('week_start', 7), 'account_zone') %}
        {{ hours_between('piece_start', 'least(span_end, ' ~ week_end ~ ')') }} as hours
    from pieces
),

union_weekly as (
    select account_id, week_start, sum(hours) as busy_hours, count(*) as busy_blocks
    from measured
    where measure = 'union'
    group by 1, 2
),

booked_weekly as (
    select account_id, week_start, sum(hours) as booked_hours, count(*) as busy_periods
    from measured
    where measure = 'sum'
    group by 1, 2
),

all_day_weekly as (
    select
        account_id,
        {{ iso_week('start_date') }} as week_start,
        sum({{ days_between('start_date', 'end_date') }}) as all_day_days
    from {{ ref('stg_free_busy') }}
    where all_day and free_busy_status in ({{ busy }})
    group by 1, 2
),

weeks as (  -- a week can have all-day days but no hours (distinct outside the union:
            -- under WITH RECURSIVE, DuckDB would keep a UNION's duplicates)
    select distinct account_id, week_start from (
        select account_id, week_start from union_weekly
        union all
        select account_id, week_start from booked_weekly
        union all
        select account_id, week_start from all_day_weekly
    ) as any_week
),

people as (
    select distinct account_id, account_name, account_zone from {{ ref('stg_free_busy') }}
)

select
    weeks.account_id,
    people.account_name,
    people.account_zone,
    weeks.week_start,
    coalesce(union_weekly.busy_hours, 0) as busy_hours,
    coalesce(booked_weekly.booked_hours, 0) as booked_hours,
    coalesce(booked_weekly.booked_hours, 0) - coalesce(union_weekly.busy_hours, 0) as overlap_hours,
    coalesce(union_weekly.busy_blocks, 0) as busy_blocks,
    coalesce(booked_weekly.busy_periods, 0) as busy_periods,
    coalesce(all_day_weekly.all_day_days, 0) as all_day_days
from weeks
left join union_weekly
    on union_weekly.account_id = weeks.account_id and union_weekly.week_start = weeks.week_start
left join booked_weekly
    on booked_weekly.account_id = weeks.account_id and booked_weekly.week_start = weeks.week_start
left join all_day_weekly
    on all_day_weekly.account_id = weeks.account_id and all_day_weekly.week_start = weeks.week_start
left join people
    on people.account_id = weeks.account_id
