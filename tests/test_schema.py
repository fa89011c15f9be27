"""Rules every table follows, checked over the models' metadata.

Each rule is a function over (metadata, classes by table) that returns what is
wrong, so the same function is run on the real schema and on a throwaway
schema with deliberately bad tables (proving that the rule bites).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlmodel import SQLModel

from app.db import NAMING_CONVENTION, UTCDateTime
from app.models import metadata

# Tables that belong to no tenant. Adding one here needs a reason in review.
# Rows that belong to a person or to the operator, not to one tenant.
GLOBAL_TABLES = frozenset(
    {
        "organization",  # the tenants themselves
        "user",  # a person can belong to several organizations
        "user_session",
        "user_identity",
        "password_reset",
        "idempotency_record",  # keyed by the user who sent the request
        "throttle_event",  # counts failures per e-mail or IP, before anyone is known
        "security_event",  # per person, shown to the owners of their organizations
        "outbox_job",  # the job runner's queue; each job sets its own tenant context
        "dev_mail",  # development only
        "notification_preference",  # one person's choices, across their organizations
    }
)
TENANT_KEYS = frozenset({"organization_id", "brand_id"})
# PostgreSQL cuts longer identifiers, and a migration would then drop the wrong name.
MAX_NAME_LENGTH = 63


def classes_by_table(mapper_registry: registry) -> dict[str, type]:
    """The model class mapped to each table of a registry."""
    found: dict[str, type] = {}
    for mapper in mapper_registry.mappers:
        table = mapper.local_table
        if isinstance(table, sa.Table):
            found[table.name] = mapper.class_
    return found


def _leading_columns(table: sa.Table) -> set[str]:
    """Columns that are the first column of an index, a unique constraint or the primary key."""
    leading: set[str] = set()
    keyed: Iterable[sa.Index | sa.UniqueConstraint | sa.PrimaryKeyConstraint] = [
        *table.indexes,
        *(c for c in table.constraints if isinstance(c, sa.UniqueConstraint)),
        table.primary_key,
    ]
    for key in keyed:
        columns = list(key.columns)
        if columns:
            leading.add(columns[0].name)
    for column in table.columns:  # Column(index=True) / Column(unique=True) before attachment
        if column.index or column.unique:
            leading.add(column.name)
    return leading


def tenant_key_problems(
    schema: sa.MetaData,
    classes: Mapping[str, type],
    global_tables: frozenset[str] = GLOBAL_TABLES,
) -> list[str]:
    problems: list[str] = []
    for name in sorted(global_tables - set(schema.tables)):
        problems.append(f"{name}: listed as a global table but no such table exists; unlist it")
    for table in schema.sorted_tables:
        if table.name in global_tables:
            continue
        model = classes.get(table.name)
        if model is None:
            problems.append(
                f"{table.name}: no model class maps this table; define it as a model with "
                "__tenant_key__ so it can be checked"
            )
            continue
        key = getattr(model, "__tenant_key__", None)
        if not key:
            problems.append(
                f"{table.name}: {model.__name__} declares no __tenant_key__; set "
                "__tenant_key__ = 'organization_id' (organization-scoped rows) or 'brand_id' "
                "(engagement-scoped rows), or add the table to the global allow-list with a reason"
            )
            continue
        if key not in TENANT_KEYS:
            problems.append(
                f"{table.name}: __tenant_key__ is {key!r}; use one of {sorted(TENANT_KEYS)}"
            )
        column = table.columns.get(key)
        if column is None:
            problems.append(
                f"{table.name}: __tenant_key__ names {key!r} but the table has no such column; "
                "add the column"
            )
            continue
        if column.nullable:
            problems.append(
                f"{table.name}: tenant key {key} is nullable; declare it with nullable=False"
            )
        if key not in _leading_columns(table):
            problems.append(
                f"{table.name}: tenant key {key} is not the first column of any index, unique "
                f"constraint or primary key; add an index that starts with {key} (e.g. "
                f'sa.Index("ix_{table.name}_{key}_...", "{key}", ...)) so scoped queries use it'
            )
    return problems


def primary_key_problems(schema: sa.MetaData) -> list[str]:
    problems: list[str] = []
    for table in schema.sorted_tables:
        columns = list(table.primary_key.columns)
        if len(columns) != 1:
            problems.append(
                f"{table.name}: primary key is {[c.name for c in columns]}; use a single "
                "UUID column (app.db.id_field())"
            )
            continue
        column = columns[0]
        if not isinstance(column.type, sa.Uuid):
            problems.append(
                f"{table.name}: primary key {column.name} is {column.type!r}, not a UUID; "
                "use app.db.id_field() (random ids, never sequential)"
            )
        elif column.autoincrement is True:
            problems.append(f"{table.name}: primary key {column.name} autoincrements; remove it")
    return problems


def _tokens(constraint: sa.Constraint | sa.Index, columns: list[sa.Column]) -> list[dict]:
    """Naming-convention tokens for each leading run of the columns.

    ``column_0_*`` names the first column; an index on several columns may also
    name more of its leading columns (``ix_post_brand_id_engagement_id``), which is
    just as stable for migrations.
    """
    table = constraint.table
    referred = ""
    if isinstance(constraint, sa.ForeignKeyConstraint) and constraint.elements:
        referred = constraint.elements[0].column.table.name
    variants = [columns[:k] for k in range(1, len(columns) + 1)] or [[]]
    result = []
    for chosen in variants:
        names = [c.name for c in chosen]
        result.append(
            {
                "table_name": table.name,
                "referred_table_name": referred,
                "column_0_name": "_".join(names),
                "column_0_N_name": "_".join(c.name for c in columns),
                "column_0N_name": "".join(c.name for c in columns),
                "column_0_label": "_".join([table.name, *names]),
                "column_0_N_label": "_".join([table.name, *(c.name for c in columns)]),
            }
        )
    return result


def _name_pattern(template: str, tokens: dict) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(%\(\w+\)s)", template):
        token = re.fullmatch(r"%\((\w+)\)s", part)
        if token is None:
            pattern += re.escape(part)
        elif token.group(1) == "constraint_name":
            pattern += r"[a-z0-9_]+"
        else:
            pattern += re.escape(str(tokens[token.group(1)]))
    return re.compile(pattern)


_KINDS: tuple[tuple[type, str], ...] = (
    (sa.PrimaryKeyConstraint, "pk"),
    (sa.UniqueConstraint, "uq"),
    (sa.ForeignKeyConstraint, "fk"),
    (sa.CheckConstraint, "ck"),
    (sa.Index, "ix"),
)


def naming_problems(schema: sa.MetaData, convention: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for table in schema.sorted_tables:
        for item in [*table.constraints, *table.indexes]:
            kind = next((k for cls, k in _KINDS if isinstance(item, cls)), None)
            if kind is None:
                problems.append(f"{table.name}: unexpected {type(item).__name__}")
                continue
            name = item.name
            columns = list(item.columns) if hasattr(item, "columns") else []
            described = f"{kind} on {[c.name for c in columns]}"
            if not isinstance(name, str) or not name:
                problems.append(
                    f"{table.name}: {described} has no name; name it by the convention "
                    f"{convention.get(kind)!r} in app/db.py (metadata.naming_convention)"
                )
                continue
            if len(name) > MAX_NAME_LENGTH:
                problems.append(
                    f"{table.name}: {kind} name {name!r} is longer than {MAX_NAME_LENGTH} "
                    "characters; shorten it"
                )
            template = convention.get(kind)
            if template is None:
                problems.append(f"{table.name}: no naming convention for {kind} in app/db.py")
                continue
            if not any(
                _name_pattern(template, tokens).fullmatch(name) for tokens in _tokens(item, columns)
            ):
                problems.append(
                    f"{table.name}: {described} is named {name!r}, which does not follow "
                    f"{template!r} (app/db.py NAMING_CONVENTION); rename it or leave the name "
                    "to the convention"
                )
    return problems


def datetime_problems(schema: sa.MetaData) -> list[str]:
    problems: list[str] = []
    for table in schema.sorted_tables:
        for column in table.columns:
            column_type = column.type
            if isinstance(column_type, UTCDateTime):
                continue
            underlying = (
                column_type.impl_instance
                if isinstance(column_type, sa.types.TypeDecorator)
                else column_type
            )
            if isinstance(underlying, sa.DateTime):
                problems.append(
                    f"{table.name}.{column.name}: {column_type!r} is not app.db.UTCDateTime; "
                    "use app.db.timestamp_field() / created_at_field()"
                )
    return problems


# --- the real schema --------------------------------------------------------


def _model_classes() -> dict[str, type]:
    return classes_by_table(SQLModel._sa_registry)


def test_every_table_is_checked() -> None:
    classes = _model_classes()
    assert set(classes) == set(metadata.tables), (
        "tables without a model class, or models outside app.models.metadata: "
        f"{set(classes) ^ set(metadata.tables)}"
    )
    # There are tenant-owned tables, so the tenant rule is not checking nothing.
    assert set(metadata.tables) - GLOBAL_TABLES


def test_every_table_but_the_global_ones_is_tenant_owned() -> None:
    problems = tenant_key_problems(metadata, _model_classes())
    assert not problems, "\n".join(problems)


def test_every_primary_key_is_a_single_uuid() -> None:
    problems = primary_key_problems(metadata)
    assert not problems, "\n".join(problems)


def test_every_constraint_and_index_is_named_by_the_convention() -> None:
    assert metadata.naming_convention == NAMING_CONVENTION
    problems = naming_problems(metadata, NAMING_CONVENTION)
    assert not problems, "\n".join(problems)


def test_every_timestamp_is_utc() -> None:
    problems = datetime_problems(metadata)
    assert not problems, "\n".join(problems)


# --- the rules bite ---------------------------------------------------------


def _throwaway_schema() -> tuple[sa.MetaData, dict[str, type]]:
    """One good tenant-owned table and one bad table per rule."""

    class Base(DeclarativeBase):
        metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    class Org(Base):
        __tablename__ = "organization"
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    class Good(Base):
        __tablename__ = "good"
        __tenant_key__ = "organization_id"
        __table_args__ = (sa.Index("ix_good_organization_id_name", "organization_id", "name"),)
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
        organization_id: Mapped[uuid.UUID] = mapped_column(
            sa.ForeignKey("organization.id"), nullable=False
        )
        name: Mapped[str] = mapped_column(sa.String(20), unique=True)
        at: Mapped[datetime] = mapped_column(UTCDateTime())

    class NoKey(Base):
        __tablename__ = "no_key"
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
        organization_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, index=True)

    class NullableKey(Base):
        __tablename__ = "nullable_key"
        __tenant_key__ = "brand_id"
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
        brand_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, nullable=True, index=True)

    class UnindexedKey(Base):
        __tablename__ = "unindexed_key"
        __tenant_key__ = "organization_id"
        __table_args__ = (sa.Index("ix_unindexed_key_name", "name", "organization_id"),)
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
        organization_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
        name: Mapped[str] = mapped_column(sa.String(20))

    class MissingKeyColumn(Base):
        __tablename__ = "missing_key_column"
        __tenant_key__ = "organization_id"
        id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    class Sequential(Base):
        __tablename__ = "sequential"
        __tenant_key__ = "organization_id"
        id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
        organization_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, index=True)
        at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    # A table with no class at all (a bare association table).
    sa.Table(
        "bare",
        Base.metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("organization_id", sa.Uuid, nullable=False),
    )
    return Base.metadata, classes_by_table(Base.registry)


def _about(problems: list[str], table: str) -> list[str]:
    return [problem for problem in problems if problem.startswith(f"{table}:")]


def test_tenant_key_rule_bites() -> None:
    schema, classes = _throwaway_schema()
    problems = tenant_key_problems(schema, classes, frozenset({"organization"}))
    assert _about(problems, "good") == []
    assert _about(problems, "sequential") == []
    (no_key,) = _about(problems, "no_key")
    assert "__tenant_key__" in no_key and "organization_id" in no_key
    (nullable,) = _about(problems, "nullable_key")
    assert "nullable" in nullable and "nullable=False" in nullable
    (unindexed,) = _about(problems, "unindexed_key")
    assert "first column" in unindexed and "add an index" in unindexed
    (missing,) = _about(problems, "missing_key_column")
    assert "no such column" in missing
    (bare,) = _about(problems, "bare")
    assert "no model class" in bare
    # A stale allow-list entry is reported too.
    stale = tenant_key_problems(schema, classes, frozenset({"organization", "gone"}))
    assert _about(stale, "gone")


def test_primary_key_rule_bites() -> None:
    schema, _ = _throwaway_schema()
    problems = primary_key_problems(schema)
    assert [p.split(":")[0] for p in problems] == ["sequential"]
    assert "UUID" in problems[0] and "id_field" in problems[0]


def test_naming_rule_bites() -> None:
    schema, _ = _throwaway_schema()
    assert naming_problems(schema, NAMING_CONVENTION) == []

    loose = sa.MetaData()  # no naming convention: nothing gets a name
    sa.Table(
        "post",
        loose,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("organization_id", sa.Uuid, sa.ForeignKey("post.id"), nullable=False),
        sa.Column("slug", sa.String(20), unique=True),
        sa.CheckConstraint("length(slug) > 0"),
        sa.Index("post_slug_idx", "slug"),
        sa.Index("ix_post_slug_organization_id", "organization_id", "slug"),  # wrong order
        sa.UniqueConstraint("organization_id", "slug", name="uq_post_org_slug"),
    )
    problems = naming_problems(loose, NAMING_CONVENTION)
    text = "\n".join(problems)
    for kind in ("pk", "fk", "uq", "ck"):
        assert any(p.startswith(f"post: {kind} on") and "has no name" in p for p in problems), text
    assert any("'post_slug_idx'" in p for p in problems), text
    assert any("'ix_post_slug_organization_id'" in p for p in problems), text
    assert any("'uq_post_org_slug'" in p for p in problems), text
    assert all(p.startswith("post:") for p in problems)


def test_datetime_rule_bites() -> None:
    schema, _ = _throwaway_schema()
    problems = datetime_problems(schema)
    assert len(problems) == 1 and problems[0].startswith("sequential.at:"), problems
