-- How do scheduling requests convert? Requests per slot_selection, in funnel order.
select
    slot_selection,
    case slot_selection
        when 'pending' then 1
        when 'pending_rescheduling' then 2
        when 'complete' then 3
        when 'expired' then 4
        when 'cancelled' then 5
        else 6
    end as stage_order,
    count(*) as requests,
    round(100.0 * count(*) / sum(count(*)) over (), 1) as share_percent
from {{ source('cronofy', 'scheduling_requests') }}
group by slot_selection
