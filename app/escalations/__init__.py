"""Escalations and hand-offs: conversations that belong to the brand, handed over on a clock."""
