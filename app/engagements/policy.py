"""The approval policy of an engagement, and the default each stage sets.

A policy is ordered steps; each step names who may decide (brand roles and/or
named people) and a quorum (``any``, ``all`` or a number). In setup every post
needs the brand's approval and no category may be relaxed; in development and
maturity the brand may relax a category, and each relaxation is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from app.engagements.models import Stage
from app.errors import N_, FieldError, InvalidInput
from app.tenancy.models import ROLES_BY_KIND, OrgKind

DEFAULT_REVIEW_HOURS = 48
BRAND_DECIDING_ROLES = ("owner", "lead", "reviewer")


def default_policy(stage: Stage | str) -> dict[str, Any]:
    # Every stage starts from "the brand approves every post"; later stages may relax it.
    return {
        "steps": [
            {
                "name": "Brand review",
                "roles": list(BRAND_DECIDING_ROLES),
                "people": [],
                "quorum": "any",
            }
        ],
        "review_hours": DEFAULT_REVIEW_HOURS,
        "relaxed_categories": {},
        "enforce_channel_limits": False,
    }


def policy_for_stage(current: dict[str, Any], stage: Stage | str) -> dict[str, Any]:
    """What the policy becomes when the engagement enters ``stage``.

    Entering setup (by moving back) removes every relaxation: in setup each post
    needs the brand's approval. Other stages keep the policy as the brand left it.
    """
    policy = dict(current) if current else default_policy(stage)
    if Stage(stage) is Stage.setup:
        policy["relaxed_categories"] = {}
    return policy


def validate_steps(
    steps: Iterable[dict[str, Any]], *, brand_member_ids: set[uuid.UUID]
) -> list[dict[str, Any]]:
    """Check and normalise policy steps; field errors name the step."""
    normalised: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    valid_roles = {role.value for role in ROLES_BY_KIND[OrgKind.brand]}
    for index, step in enumerate(steps):
        field = f"steps.{index}"
        name = str(step.get("name", "")).strip()[:80]
        roles = [str(role) for role in step.get("roles", [])]
        people_raw = [str(person) for person in step.get("people", [])]
        quorum = step.get("quorum", "any")
        if not name:
            errors.append(FieldError(f"{field}.name", N_("Name the step (e.g. Marketing, Legal).")))
        if any(role not in valid_roles for role in roles):
            errors.append(FieldError(f"{field}.roles", N_("Only brand roles can decide.")))
        people: list[str] = []
        for person in people_raw:
            try:
                person_id = uuid.UUID(person)
            except ValueError:
                person_id = None
            if person_id is None or person_id not in brand_member_ids:
                errors.append(
                    FieldError(
                        f"{field}.people", N_("Named deciders must be members of the brand.")
                    )
                )
                break
            people.append(str(person_id))
        if not roles and not people_raw:
            errors.append(
                FieldError(f"{field}.roles", N_("Say who may decide: a role or named people."))
            )
        if quorum not in ("any", "all"):
            try:
                quorum = int(quorum)
            except (TypeError, ValueError):
                quorum = 0
            if quorum < 1:
                errors.append(
                    FieldError(f"{field}.quorum", N_("The quorum is any, all, or a number from 1."))
                )
        normalised.append({"name": name, "roles": roles, "people": people, "quorum": quorum})
    if not normalised:
        errors.append(FieldError("steps", N_("A policy needs at least one step.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    return normalised
