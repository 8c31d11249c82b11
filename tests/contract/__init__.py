"""Contract tests: each library the service adapts, at its pinned version, does what we rely on."""
