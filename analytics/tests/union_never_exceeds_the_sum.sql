-- Merging overlapping periods can only shrink the total.
select * from {{ ref('busy_hours_weekly') }} where busy_hours > booked_hours + 0.0001
