"""``pnsq authd``: an auth server for nsqd's ``--auth-http-address`` (NSQ's auth HTTP protocol)."""
