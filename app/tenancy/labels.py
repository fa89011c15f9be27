"""How roles are named and explained on pages."""

from __future__ import annotations

from app import web
from app.errors import N_
from app.tenancy.models import OrgKind, Role

ROLE_NAMES = {
    Role.owner: N_("Owner"),
    Role.lead: N_("Account lead"),
    Role.reviewer: N_("Reviewer"),
    Role.viewer: N_("Viewer"),
    Role.manager: N_("Manager"),
    Role.creator: N_("Creator"),
}

ROLE_HELP = {
    (OrgKind.brand, Role.owner): N_("Everything in the brand: members, engagements, policies."),
    (OrgKind.brand, Role.lead): N_(
        "All the brand's engagements, stage changes and the comparison of agencies."
    ),
    (OrgKind.brand, Role.reviewer): N_(
        "Reviews posts, accepts deliverables, verifies or disputes results."
    ),
    (OrgKind.brand, Role.viewer): N_("Reads everything, changes nothing."),
    (OrgKind.agency, Role.owner): N_(
        "Everything in the agency: members and its side of engagements."
    ),
    (OrgKind.agency, Role.manager): N_(
        "Runs engagements: deliverables, results, escalations and posts."
    ),
    (OrgKind.agency, Role.creator): N_("Drafts and edits posts, answers comments."),
}

web.register_labels("role_names", ROLE_NAMES)
web.register_labels("role_help", ROLE_HELP)
