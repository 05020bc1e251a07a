"""tensorweave.dse (see the issue tracker for its status)."""
