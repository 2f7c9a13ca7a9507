"""The tap's streams, one module each; they build records from Cronofy's answers."""

from tap_cronofy.streams.directory import AccountsStream, CalendarsStream
from tap_cronofy.streams.free_busy import FreeBusyStream
from tap_cronofy.streams.scheduling_requests import SchedulingRequestsStream

__all__ = ["AccountsStream", "CalendarsStream", "FreeBusyStream", "SchedulingRequestsStream"]
