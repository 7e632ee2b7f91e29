"""Self-hosted, sandboxed code interpreter for Discord."""
