"""Posts, their immutable versions, and the brand's decisions on them (issue #5)."""
