"""Rule: replace each masked column's projection in its governed relation by the mask.

``"ssn"`` in the governed relation's select list becomes
``<mask expression over __src."ssn"> AS "ssn"`` (see ``policies.masking``).
Because the mask is applied inside the relation, everything the client writes
outside it (select list, ``WHERE``, ``JOIN ... ON``, ``GROUP BY``, ``ORDER BY``,
windows, ``DISTINCT``, set operations) sees only the masked value: a masked
column is never an oracle for its clear value. The row filter of the same
relation is evaluated on raw values before the masks (it is a ``WHERE`` of the
inner select, which reads ``__src`` columns).

A mask on a column the caller was not granted changes nothing (the column is
not projected); a mask with bad parameters or an HMAC mask without a key fails
the whole query (``policies.masking.MaskError``), never the mask alone.
"""

from __future__ import annotations

from sqlglot import exp

from policies.masking import mask_expression
from policies.rewrite.context import RewriteContext, governed_relations
from policies.rewrite.replace_with_governed_relations import raw_column


def mask_columns(expression: exp.Query, context: RewriteContext) -> exp.Query:
    for relation, source in governed_relations(expression):
        masks = {mask.column: mask for mask in source.masks}
        if not masks:
            continue
        inner = relation.this
        projections = []
        for projection in inner.expressions:
            mask = masks.get(projection.output_name)
            if mask is not None and isinstance(projection, exp.Column):
                masked = mask_expression(
                    mask, raw_column(mask.column), context.mask_key, dataset=source.sql_name
                )
                projection = exp.alias_(masked, exp.to_identifier(mask.column, quoted=True))
            projections.append(projection)
        inner.set("expressions", projections)
    return expression
