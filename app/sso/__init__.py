"""Single sign-on with OpenID Connect: a global provider and one per organization."""
