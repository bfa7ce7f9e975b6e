"""Checking an answer against the schema: every value has the type and nullability the field declares."""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
)

STRING_SCALARS = {
    "String",
    "ID",
    "URL",
    "DateTime",
    "HTML",
    "Money",
    "Decimal",
    "UnsignedInt64",
    "FormattedString",
}


def check(schema: GraphQLSchema, type_: Any, value: Any, path: str = "data") -> int:
    """Raise AssertionError at the first value that breaks its declared type; return values checked."""
    if isinstance(type_, GraphQLNonNull):
        assert value is not None, f"{path}: null for a non-null {type_}"
        return check(schema, type_.of_type, value, path)
    if value is None:
        return 1
    if isinstance(type_, GraphQLList):
        assert isinstance(value, list), f"{path}: {value!r} is not a list"
        return sum(check(schema, type_.of_type, v, f"{path}[{n}]") for n, v in enumerate(value))
    if isinstance(type_, GraphQLScalarType):
        if type_.name in STRING_SCALARS:
            assert isinstance(value, str), f"{path}: {value!r} is not a {type_.name} string"
        elif type_.name == "Int":
            assert isinstance(value, int), f"{path}: {value!r}"
            assert not isinstance(value, bool), f"{path}: {value!r}"
        elif type_.name == "Float":
            assert isinstance(value, (int, float)), f"{path}"
            assert not isinstance(value, bool), f"{path}"
        elif type_.name == "Boolean":
            assert isinstance(value, bool), f"{path}: {value!r} is not a Boolean"
        if type_.name == "DateTime":
            assert value.endswith("Z"), f"{path}: {value!r} is not UTC ISO 8601"
            assert "T" in value, f"{path}: {value!r} is not UTC ISO 8601"
        if type_.name == "Decimal":
            float(value)
        return 1
    if isinstance(type_, GraphQLEnumType):
        assert value in type_.values, f"{path}: {value!r} is not a {type_.name}"
        return 1
    assert isinstance(value, dict), f"{path}: {value!r} is not an object"
    concrete = type_
    if isinstance(type_, (GraphQLInterfaceType, GraphQLUnionType)):
        name = value.get("__typename")
        assert name, f"{path}: select __typename on abstract {type_.name}"
        concrete = schema.type_map[name]
        assert concrete in schema.get_possible_types(type_), f"{path}: {name} not a {type_.name}"
    assert isinstance(concrete, GraphQLObjectType)
    checked = 0
    for key, item in value.items():
        if key == "__typename":
            assert item == concrete.name
            continue
        field = concrete.fields.get(key)
        assert field is not None, f"{path}.{key}: not a field of {concrete.name} (use no aliases)"
        checked += check(schema, field.type, item, f"{path}.{key}")
    return checked
