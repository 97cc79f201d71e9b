"""Command-line tools beside the daemons (NSQ's ``apps/``)."""
