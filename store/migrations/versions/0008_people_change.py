"""people change: customer names unique regardless of case (``customers.name_key``, the
casefolded name), and each user's language for what the gateway tells them (``users.lang``,
none: the config's default)

Customers whose names differ only in case are renamed ``<name> (#<id>)`` (all but the oldest),
so that the unique index can be made; the rename is what the admin then sees in
``customer list``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('lang', sa.String(length=8), nullable=True))
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('name_key', sa.String(length=220), nullable=True))
    conn = op.get_bind()
    seen: set[str] = set()
    for cid, name in conn.execute(sa.text("SELECT id, name FROM customers ORDER BY id")).all():
        key = name.casefold()
        if key in seen:  # SQL's lower() folds only ASCII on SQLite: Python decides
            name = f"{name} (#{cid})"
            key = name.casefold()
        seen.add(key)
        conn.execute(sa.text("UPDATE customers SET name = :n, name_key = :k WHERE id = :i"),
                     {"n": name, "k": key, "i": cid})
    with op.batch_alter_table('customers') as batch:
        batch.alter_column('name_key', existing_type=sa.String(length=220), nullable=False)
        batch.create_index('ix_customers_name_key', ['name_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_index('ix_customers_name_key')
        batch.drop_column('name_key')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('lang')
