"""The schema against Shopify's reference: every listed field, argument, type and nullability is served,
and every field of a modelled type is answered by a resolver (none falls through to a silent null)."""

from __future__ import annotations

import re

import pytest
from graphql import GraphQLField, GraphQLObjectType

from shopify_emulator import catalog_fields
from shopify_emulator.graphql_api import schema
from tests.emulator.reference_fields import MUTATIONS, REFERENCE, ROOT

ENTRY = re.compile(r"^(\w+)(?:\(([^)]*)\))?: (.+)$")


def _parse(entry: str) -> tuple[str, set[str], str]:
    match = ENTRY.match(entry)
    assert match, entry
    name, args, type_ = match.groups()
    return name, {a.strip() for a in (args or "").split(",") if a.strip()}, type_


def _check(owner: GraphQLObjectType, entries: tuple[str, ...]) -> list[str]:
    problems = []
    for entry in entries:
        name, args, type_ = _parse(entry)
        field: GraphQLField | None = owner.fields.get(name)
        if field is None:
            problems.append(f"{owner.name}.{name} is missing")
            continue
        if str(field.type) != type_:
            problems.append(f"{owner.name}.{name} is {field.type}, the reference says {type_}")
        missing = args - set(field.args)
        if missing:
            problems.append(f"{owner.name}.{name} lacks arguments {sorted(missing)}")
    return problems


@pytest.mark.parametrize("type_name", sorted(REFERENCE))
def test_type_has_every_reference_field(type_name: str) -> None:
    gtype = schema().type_map.get(type_name)
    assert isinstance(gtype, GraphQLObjectType), f"{type_name} is not served"
    assert _check(gtype, REFERENCE[type_name]) == []


def test_root_fields_and_mutations_match_the_reference() -> None:
    query, mutation = schema().query_type, schema().mutation_type
    assert query is not None
    assert mutation is not None
    assert _check(query, ROOT) == []
    assert _check(mutation, MUTATIONS) == []


def test_check_catches_a_missing_field() -> None:
    # The check itself: a field the schema does not have is reported, not skipped.
    product = schema().type_map["Product"]
    assert isinstance(product, GraphQLObjectType)
    assert _check(product, ("noSuchField: String",)) == ["Product.noSuchField is missing"]
    assert _check(product, ("publishedAt: DateTime!",)) == [
        "Product.publishedAt is DateTime, the reference says DateTime!"
    ]


def test_every_field_of_a_modelled_type_has_a_resolver() -> None:
    for type_name, resolvers in catalog_fields.FIELDS.items():
        gtype = schema().type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType)
        sources = catalog_fields.SOURCES.get(type_name, {})
        unanswered = [f for f in gtype.fields if f not in resolvers and f not in sources]
        assert unanswered == [], f"{type_name}: {unanswered}"
