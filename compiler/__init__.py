"""tensorweave.compiler (see the issue tracker for its status)."""
