"""What each role may do: the one table every permission check reads.

Capabilities are checked only after the object has been loaded through the
scoped query layer, so a missing capability on an object you can see is a 403
with the reason, and an object you cannot see is a 404 before this table is read.
"""

from __future__ import annotations

from app.errors import N_
from app.tenancy.models import OrgKind, Role

_READ = {"org.read", "members.read", "engagement.read"}

CAPABILITIES: dict[tuple[OrgKind, Role], frozenset[str]] = {
    (OrgKind.brand, Role.owner): frozenset(
        _READ
        | {
            "members.manage",
            "org.settings",
            "engagement.open",
            "engagement.edit",
            "engagement.stage",
            "engagement.attest",
            "agency.compare",
            "post.approve",
            "deliverable.accept",
            "result.verify",
            "escalation.handle",
        }
    ),
    (OrgKind.brand, Role.lead): frozenset(
        _READ
        | {
            "engagement.open",
            "engagement.edit",
            "engagement.stage",
            "engagement.attest",
            "agency.compare",
            "post.approve",
            "deliverable.accept",
            "result.verify",
            "escalation.handle",
        }
    ),
    (OrgKind.brand, Role.reviewer): frozenset(
        _READ | {"post.approve", "deliverable.accept", "result.verify", "escalation.handle"}
    ),
    (OrgKind.brand, Role.viewer): frozenset(_READ),
    (OrgKind.agency, Role.owner): frozenset(
        _READ
        | {
            "members.manage",
            "org.settings",
            "engagement.respond",
            "engagement.attest",
            "post.draft",
            "deliverable.deliver",
            "result.report",
            "escalation.open",
        }
    ),
    (OrgKind.agency, Role.manager): frozenset(
        _READ
        | {
            "engagement.respond",
            "engagement.attest",
            "post.draft",
            "deliverable.deliver",
            "result.report",
            "escalation.open",
        }
    ),
    (OrgKind.agency, Role.creator): frozenset(_READ | {"post.draft"}),
}

# Why a capability is refused, in words a person understands.
REFUSAL_REASONS: dict[str, str] = {
    "engagement.open": N_("Only the brand's owners and account leads open engagements."),
    "engagement.edit": N_("Only the brand's owners and account leads change an engagement."),
    "engagement.stage": N_("Only the brand's owners and account leads change the stage."),
    "engagement.respond": N_("Only the agency's owners and managers answer a proposal."),
    "engagement.attest": N_(
        "Only owners and account leads of the brand, or owners and managers of the agency, attest."
    ),
    "members.manage": N_("Only an owner of the organization can manage its members."),
    "org.settings": N_("Only an owner of the organization can change its settings."),
    "deliverable.deliver": N_("Only the agency's owners and managers deliver."),
    "deliverable.accept": N_(
        "Only the brand's owners, account leads and reviewers accept or return deliverables."
    ),
    "escalation.open": N_("Only the agency's owners and managers open escalations."),
    "escalation.handle": N_(
        "Only the brand's owners, account leads and reviewers handle escalations."
    ),
}
DEFAULT_REFUSAL = N_("Your role in this organization does not allow this.")


def can(kind: OrgKind | str, role: Role | str, capability: str) -> bool:
    return capability in CAPABILITIES.get((OrgKind(kind), Role(role)), frozenset())


def refusal_reason(capability: str) -> str:
    return REFUSAL_REASONS.get(capability, DEFAULT_REFUSAL)
