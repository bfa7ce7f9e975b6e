"""Shopify's calculated query cost, computed before execution.

Scalars and enums cost 0, an object 1, a connection 2 plus `first` times the cost of one node, and a
mutation field 10. The figure is the `requestedQueryCost` that is deducted from the bucket up front.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)

MUTATION_COST = 10
CONNECTION_BASE = 2


def is_connection(type_name: str) -> bool:
    return type_name.endswith("Connection")


class CostCalculator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def operation(self, op: OperationDefinitionNode) -> int:
        if op.operation == OperationType.MUTATION:
            # Each mutation field costs a flat 10 whatever it selects.
            return MUTATION_COST * len(self._fields(op.selection_set, self.schema.mutation_type))
        root = self.schema.query_type
        assert root is not None
        return self.selection(op.selection_set, root)

    def _fields(self, selection_set: SelectionSetNode | None, parent: Any) -> list[FieldNode]:
        out: list[FieldNode] = []
        if selection_set is None:
            return out
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                out.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                out.extend(self._fields(selection.selection_set, parent))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    out.extend(self._fields(fragment.selection_set, parent))
        return out

    def selection(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in self._fields(selection_set, parent):
            total += self.field(node, parent)
        return total

    def _field_type(self, parent: Any, name: str) -> Any:
        candidates: list[Any] = [parent]
        if isinstance(parent, GraphQLUnionType):
            candidates = list(parent.types)
        elif isinstance(parent, GraphQLInterfaceType):
            candidates = [parent, *self.schema.get_possible_types(parent)]
        for candidate in candidates:
            if (
                isinstance(candidate, GraphQLObjectType | GraphQLInterfaceType)
                and name in candidate.fields
            ):
                return get_named_type(candidate.fields[name].type)
        return None

    def field(self, node: FieldNode, parent: Any) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        named = self._field_type(parent, name)
        if named is None or is_leaf_type(named):
            return 0
        if is_connection(named.name):
            size = self._int_arg(node, "first") or self._int_arg(node, "last") or 0
            return CONNECTION_BASE + size * self._node_cost(node, named)
        return 1 + self.selection(node.selection_set, named)

    def _node_cost(self, node: FieldNode, connection: Any) -> int:
        node_type = get_named_type(connection.fields["nodes"].type)
        best = 1
        for child in self._fields(node.selection_set, connection):
            if child.name.value == "nodes":
                best = max(best, 1 + self.selection(child.selection_set, node_type))
            elif child.name.value == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                for grandchild in self._fields(child.selection_set, edge_type):
                    if grandchild.name.value == "node":
                        best = max(best, 1 + self.selection(grandchild.selection_set, node_type))
        return best

    def _int_arg(self, node: FieldNode, name: str) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                return found if isinstance(found, int) else None
        return None
