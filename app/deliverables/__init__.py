"""Deliverables: what the agency owes by its scope of work, delivered and accepted."""
