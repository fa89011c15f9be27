"""Shapes every API endpoint shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import N_, FieldError, InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``total`` counts every item, not just this page's."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- turning validation errors into messages people understand ----------------

_PYDANTIC_MESSAGES = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This is too long."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "decimal_parsing": N_("Enter a number."),
    "float_parsing": N_("Enter a number."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "datetime_parsing": N_("Enter a date and time in ISO 8601."),
    "datetime_from_date_parsing": N_("Enter a date and time in ISO 8601."),
    "enum": N_("Choose one of the options."),
    "literal_error": N_("Choose one of the options."),
    "uuid_parsing": N_("This is not a valid id."),
    "value_error": N_("This value is not valid."),
    "greater_than_equal": N_("This number is too small."),
    "greater_than": N_("This number is too small."),
    "less_than_equal": N_("This number is too large."),
    "too_long": N_("There are too many items."),
    "list_type": N_("Send a list."),
    "bool_parsing": N_("Choose yes or no."),
}


class InputRule(ValueError):
    """Raised by our validators with an ``N_()`` msgid: shown as it is (translated), where
    pydantic's own value errors get the generic message."""


def field_errors_from(errors: Sequence[Any], *, skip: tuple[str, ...] = ()) -> list[FieldError]:
    """Pydantic's errors as our field errors, with translatable messages."""
    result = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        # Only the leading part names where the value came from: a field may be called
        # "body" too (a post's, a comment's).
        if location and location[0] in skip:
            location = location[1:]
        message = _PYDANTIC_MESSAGES.get(error.get("type", ""), N_("This value is not valid."))
        rule = (error.get("ctx") or {}).get("error")
        if isinstance(rule, InputRule):
            message = str(rule)
        result.append(FieldError(".".join(location) or "request", message))
    return result


Model = TypeVar("Model", bound=BaseModel)


def parse_input(model: type[Model], data: Mapping[str, Any]) -> Model:
    """Validate form input with the same model the API uses; 422 with field errors."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(field_errors=field_errors_from(exc.errors())) from None
