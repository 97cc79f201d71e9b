"""pnsq admin: nsqadmin's web view, with live charts and queue peeking, no graphite needed."""
