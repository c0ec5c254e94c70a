"""mail copies: a user's own copies (APPEND, COPY into their folders) are mails of their own,
so the same bytes may be stored once per copy; mail synced from the company mailbox stays one
row per message

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:35:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SYNCED = sa.text("direction IN ('in', 'out', 'notice')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The constraint was made without a name: a naming convention lets the batch find it.
        with op.batch_alter_table('mails', recreate='always',
                                  naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}) as batch:
            batch.drop_constraint('uq_mails_mailbox_id', type_='unique')
    else:
        op.drop_constraint('mails_mailbox_id_blob_key', 'mails', type_='unique')
    op.create_index('ix_mails_synced_blob', 'mails', ['mailbox_id', 'blob'], unique=True,
                    sqlite_where=SYNCED, postgresql_where=SYNCED)


def downgrade() -> None:
    op.drop_index('ix_mails_synced_blob', table_name='mails')
    op.execute("DELETE FROM mails WHERE direction NOT IN ('in', 'out', 'notice')")
    with op.batch_alter_table('mails') as batch:
        batch.create_unique_constraint('uq_mails_mailbox_id', ['mailbox_id', 'blob'])
