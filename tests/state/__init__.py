"""State over time: formats, moving it, bookmarks over months, the warehouse equal to Cronofy."""
