"""Notifications: in-app (the bell) and e-mail, per kind and per channel as each person chooses."""
