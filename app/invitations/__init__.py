"""Invitations by e-mail: people into an organization, and agencies onto Brandkeep."""
