"""Lookups the client base's queries need to stay on an index, on PostgreSQL and on SQLite alike."""

from django.db import connection
from django.db.models import CharField, Lookup, Q

from simplecalls.db import array_literal


@CharField.register_lookup
class AnyOf(Lookup):
    """`column = ANY(%s::text[])` with one array parameter, where `__in` would bind thousands (PostgreSQL).

    The array goes as one literal string: the driver's per-element array dumping cost more than the query.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::text[])", [*params, array_literal(self.rhs)]


def one_of(name: str, values: set[str]) -> Q:
    lookup = "any_of" if connection.vendor == "postgresql" else "in"
    return Q(**{f"{name}__{lookup}": values})


@CharField.register_lookup
class Prefix(Lookup):
    """The column starts with the value, read from the column's btree index.

    PostgreSQL: LIKE 'value%' (the index needs varchar_pattern_ops, see clients.models.prefix_index).
    SQLite: a range, as its LIKE ignores a plain index (it would need a NOCASE one).
    """

    lookup_name = "prefix"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} LIKE %s", [*params, connection.ops.prep_for_like_query(self.rhs) + "%"]

    def as_sqlite(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        # Binary order is code point order in UTF-8: every string starting with the value sorts below value + U+10FFFF.
        return f"({lhs} >= %s AND {lhs} < %s)", [*params, self.rhs, *params, self.rhs + "\U0010ffff"]
