-- Live periods only (deleted ones and those that left the window dropped), one row per event per account even when the
-- event sits on several of the account's calendars, with calendar and account names.
with live as (
    select
        account_id,
        calendar_id,
        event_uid,
        free_busy_status,
        all_day,
        start_time,
        end_time,
        cast(substr({{ adapter.quote("start") }}, 1, 10) as date) as start_date,
        cast(substr({{ adapter.quote("end") }}, 1, 10) as date) as end_date,
        row_number() over (
            partition by account_id, event_uid order by calendar_id
        ) as copy_number
    from {{ source('cronofy', 'free_busy') }}
    where not deleted and _sdc_deleted_at is null  -- deleted, or out of the window
)

select
    live.account_id,
    accounts.name as account_name,
    accounts.email as account_email,
    coalesce(accounts.zoneinfo, 'UTC') as account_zone,
    live.event_uid,
    live.calendar_id,
    calendars.calendar_name,
    live.free_busy_status,
    live.all_day,
    live.start_time,
    live.end_time,
    live.start_date,
    live.end_date
from live
left join {{ source('cronofy', 'calendars') }} as calendars
    on calendars.calendar_id = live.calendar_id
left join {{ source('cronofy', 'accounts') }} as accounts
    on accounts.account_id = live.account_id
where live.copy_number = 1
