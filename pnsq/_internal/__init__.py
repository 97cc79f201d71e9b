"""Small helpers shared by the daemons (durations, addresses, logging); nothing NSQ-specific."""
