"""ARS staff tools: listing, search, exports, statistics, outbox state, territory overlaps."""
