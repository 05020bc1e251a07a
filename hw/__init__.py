"""tensorweave.hw (see the issue tracker for its status)."""
