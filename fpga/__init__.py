"""tensorweave.fpga (see the issue tracker for its status)."""
