"""Record schemas of the four streams."""

from __future__ import annotations

from singer_sdk import typing as th

FREE_BUSY = th.PropertiesList(
    th.Property(
        "account_id",
        th.StringType,
        required=True,
        description="Cronofy account (`sub`) the period belongs to",
    ),
    th.Property("calendar_id", th.StringType, required=True),
    th.Property(
        "event_uid",
        th.StringType,
        required=True,
        description="Identifies the event across calendars",
    ),
    th.Property(
        "event_id", th.StringType, description="Your application's id, only for events it manages"
    ),
    th.Property(
        "start",
        th.StringType,
        description="As Cronofy sent it: a date for all-day periods, else a time",
    ),
    th.Property("end", th.StringType, description="Exclusive end, as Cronofy sent it"),
    th.Property("start_tzid", th.StringType, description="Zone of `start` (localized_times)"),
    th.Property("end_tzid", th.StringType, description="Zone of `end` (localized_times)"),
    th.Property(
        "start_time",
        th.DateTimeType,
        description="Start in UTC; all-day periods start at midnight in `tzid`",
    ),
    th.Property("end_time", th.DateTimeType, description="End in UTC"),
    th.Property("all_day", th.BooleanType),
    th.Property(
        "start_date",
        th.DateType,
        description="All-day periods: the first day, a date (no warehouse need parse `start`); "
        "null for timed ones",
    ),
    th.Property(
        "end_date",
        th.DateType,
        description="All-day periods: the day after the last (exclusive), a date; null for "
        "timed ones",
    ),
    th.Property(
        "free_busy_status",
        th.StringType,
        description="busy, tentative, free or unknown (any string is kept)",
    ),
    th.Property("deleted", th.BooleanType),
    th.Property(
        "last_modified",
        th.DateTimeType,
        required=True,
        description="Sync watermark: when the tap asked Cronofy, by Cronofy's clock",
    ),
    th.Property(
        "_sdc_deleted_at",
        th.DateTimeType,
        description="Set when Cronofy reported the event deleted, or when the period moved "
        "out of the window the tap keeps (start_date/end_date, else 42 days back to 201 ahead)",
    ),
).to_dict()

_TIME_IN_ZONE = th.ObjectType(
    th.Property("time", th.DateTimeType),
    th.Property("tzid", th.StringType),
)

SCHEDULING_REQUEST = th.PropertiesList(
    th.Property("scheduling_request_id", th.StringType, required=True),
    th.Property(
        "slot_selection",
        th.StringType,
        description="pending, pending_rescheduling, complete, expired or cancelled",
    ),
    th.Property("primary_select_url", th.StringType),
    th.Property("dashboard_url", th.StringType),
    th.Property("summary", th.StringType),
    th.Property(
        "recipient_operations",
        th.ObjectType(
            th.Property("view_url", th.StringType),
            th.Property("decline_url", th.StringType),
            th.Property("reschedule_url", th.StringType),
        ),
    ),
    th.Property(
        "recipients",
        th.ArrayType(
            th.ObjectType(
                th.Property("email", th.StringType),
                th.Property("display_name", th.StringType),
                th.Property("slot_selector", th.BooleanType),
                th.Property("select_url", th.StringType),
            )
        ),
    ),
    th.Property(
        "collaborator_groups",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType),
                th.Property(
                    "members", th.ArrayType(th.ObjectType(th.Property("sub", th.StringType)))
                ),
                th.Property(
                    "required",
                    th.CustomType({"type": ["string", "integer"]}),
                    description="`all`, or how many members must be available",
                ),
            )
        ),
    ),
    th.Property(
        "event",
        th.ObjectType(
            th.Property("summary", th.StringType),
            th.Property("start", _TIME_IN_ZONE, description="Only once a slot is chosen"),
            th.Property("end", _TIME_IN_ZONE, description="Only once a slot is chosen"),
            th.Property("metadata", th.ObjectType(additional_properties=True)),
        ),
    ),
    th.Property(
        "buffer",
        th.ObjectType(
            th.Property(
                "before",
                th.ObjectType(th.Property("minutes", th.IntegerType), additional_properties=True),
            ),
            th.Property(
                "after",
                th.ObjectType(th.Property("minutes", th.IntegerType), additional_properties=True),
            ),
        ),
    ),
    th.Property(
        "duration",
        th.ObjectType(th.Property("minutes", th.IntegerType), additional_properties=True),
        description='The meeting\'s length, e.g. {"minutes": 30}',
    ),
    th.Property(
        "last_modified",
        th.DateTimeType,
        required=True,
        description="When the tap first saw this version, by Cronofy's clock",
    ),
).to_dict()

_CALENDAR_PROPERTIES = (
    th.Property("calendar_id", th.StringType, required=True),
    th.Property("calendar_name", th.StringType),
    th.Property("profile_id", th.StringType),
    th.Property("profile_name", th.StringType),
    th.Property("provider_name", th.StringType, description="google, exchange, apple, ..."),
    th.Property("calendar_readonly", th.BooleanType),
    th.Property("calendar_deleted", th.BooleanType),
    th.Property("calendar_primary", th.BooleanType),
    th.Property("calendar_integrated_conferencing_available", th.BooleanType),
    th.Property("calendar_attachments_available", th.BooleanType),
    th.Property("permission_level", th.StringType, description="unrestricted or sandbox"),
    th.Property("calendar_color", th.StringType),
)
CALENDAR_FIELDS = tuple(p.name for p in _CALENDAR_PROPERTIES)

CALENDAR = th.PropertiesList(
    th.Property("account_id", th.StringType, required=True, description="Owning account"),
    *_CALENDAR_PROPERTIES,
    th.Property(
        "last_modified",
        th.DateTimeType,
        required=True,
        description="When the tap first saw this version of the calendar, by Cronofy's clock",
    ),
    th.Property(
        "full_listing_at",
        th.DateTimeType,
        description="When the tap last read the account's calendars with no state to "
        "compare against (its first read, or after the state was cleared): every calendar "
        "then listed was emitted then, so one whose last_modified is older is no longer listed",
    ),
    th.Property(
        "_sdc_deleted_at",
        th.DateTimeType,
        description="Set when /v1/calendars stopped listing the calendar",
    ),
).to_dict()

ACCOUNT = th.PropertiesList(
    th.Property("account_id", th.StringType, required=True, description="Cronofy `sub`"),
    th.Property("email", th.StringType),
    th.Property("name", th.StringType),
    th.Property("zoneinfo", th.StringType, description="The account's IANA time zone"),
    th.Property(
        "cronofy_type",
        th.StringType,
        description="`cronofy.type`: account, service_account, application_calendar",
    ),
    th.Property(
        "authorization",
        th.ObjectType(
            th.Property("scope", th.StringType),
            th.Property("delegated_scope", th.StringType),
            th.Property("status", th.StringType, description="e.g. active"),
        ),
        description="The token's scope and status (`cronofy.data.authorization`)",
    ),
    th.Property(
        "profiles",
        th.ArrayType(
            th.ObjectType(
                th.Property("provider_name", th.StringType),
                th.Property("provider_service", th.StringType, description="e.g. gsuite"),
                th.Property("profile_id", th.StringType),
                th.Property("profile_name", th.StringType),
                th.Property("profile_connected", th.BooleanType),
                th.Property("profile_initial_sync_required", th.BooleanType),
                th.Property(
                    "profile_relink_url",
                    th.StringType,
                    description="Where the user reconnects a disconnected profile",
                ),
                th.Property(
                    "profile_calendars",
                    th.ArrayType(th.ObjectType(*_CALENDAR_PROPERTIES)),
                ),
            )
        ),
        description="Connected calendar profiles (from `cronofy.data`)",
    ),
    th.Property(
        "conferencing_profiles",
        th.ArrayType(
            th.ObjectType(
                th.Property("provider_name", th.StringType, description="zoom, go_to, ..."),
                th.Property("profile_id", th.StringType),
                th.Property("profile_name", th.StringType),
                th.Property("profile_connected", th.BooleanType),
                th.Property("profile_relink_url", th.StringType),
            )
        ),
        description="Conferencing profiles (`cronofy.data.conferencing_profiles`)",
    ),
    th.Property(
        "application_calendar_id",
        th.StringType,
        description="An application calendar's own id (its userinfo's `application_calendar_id`)",
    ),
    th.Property(
        "application_calendar",
        th.ObjectType(additional_properties=True),
        description="`cronofy.data.application_calendar`, as Cronofy sends it",
    ),
    th.Property(
        "service_account",
        th.ObjectType(additional_properties=True),
        description="`cronofy.data.service_account`, as Cronofy sends it",
    ),
).to_dict()
