"""Clients for the outside world (WeChat), each behind a configurable base URL."""
