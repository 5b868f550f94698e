"""A module whose import fails with something other than ImportError (`--env raising_module:X-v0`)."""

raise RuntimeError("this module is broken at import")
