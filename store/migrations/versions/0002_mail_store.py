"""the store's copy of the company mailbox: mailboxes, folders, mails, their locations,
search text and blobs; every customer, message and spool row names its mailbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 05:26:55.572019
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('blob_chunks',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('sha256', 'seq')
    )
    op.create_table('mailboxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailboxes_name'), ['name'], unique=True)
    # The mailbox [upstream] names: every existing row belongs to it.
    op.execute(sa.text("INSERT INTO mailboxes (id, name, address, created_at) VALUES (1, 'default', '', CURRENT_TIMESTAMP)"))
    if op.get_bind().dialect.name == "postgresql":  # the next mailbox gets id 2
        op.execute(sa.text("SELECT setval(pg_get_serial_sequence('mailboxes', 'id'), 1)"))

    op.create_table('folders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('uid_next', sa.BigInteger(), nullable=False),
    sa.Column('highest_modseq', sa.BigInteger(), nullable=True),
    sa.Column('message_count', sa.Integer(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('diffed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox_id', 'name')
    )
    op.create_table('sync_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('component', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox_id', 'component')
    )
    op.create_table('mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox_id', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('blob', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('internal_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('in_reply_to', sa.Text(), nullable=True),
    sa.Column('refs', sa.Text(), nullable=True),
    sa.Column('thread_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('from_addr', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('to_addrs', sa.Text(), nullable=False),
    sa.Column('cc_addrs', sa.Text(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('folder_role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('filed_by', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('out_message_id', sa.Integer(), nullable=True),
    sa.Column('facts', sa.Text(), nullable=True),
    sa.Column('masked_blob', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('masked_facts', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], ),
    sa.ForeignKeyConstraint(['out_message_id'], ['messages.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox_id', 'blob')
    )
    with op.batch_alter_table('mails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mails_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_from_addr'), ['from_addr'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_out_message_id'), ['out_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_thread_id'), ['thread_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mails_user_id'), ['user_id'], unique=False)

    op.create_table('mail_locations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('folder_id', sa.Integer(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.Column('modseq', sa.BigInteger(), nullable=True),
    sa.Column('gone_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['folder_id'], ['folders.id'], ),
    sa.ForeignKeyConstraint(['mail_id'], ['mails.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('folder_id', 'uidvalidity', 'uid')
    )
    with op.batch_alter_table('mail_locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_locations_folder_id'), ['folder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_locations_mail_id'), ['mail_id'], unique=False)

    op.create_table('mail_text',
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mails.id'], ),
    sa.PrimaryKeyConstraint('mail_id')
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("customers", "messages", "spool"):
        op.add_column(table, sa.Column("mailbox_id", sa.Integer(), server_default=sa.text("1"), nullable=False))
        if not sqlite:  # SQLite cannot add a REFERENCES column with a default while foreign keys are on
            op.create_foreign_key(f"fk_{table}_mailbox", table, "mailboxes", ["mailbox_id"], ["id"])
    op.add_column("customers", sa.Column("return_reminded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_column("customers", "return_reminded_at")
    for table in ("spool", "messages", "customers"):
        if not sqlite:
            op.drop_constraint(f"fk_{table}_mailbox", table, type_="foreignkey")
        op.drop_column(table, "mailbox_id")
    op.drop_table('mail_text')
    with op.batch_alter_table('mail_locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_locations_mail_id'))
        batch_op.drop_index(batch_op.f('ix_mail_locations_folder_id'))

    op.drop_table('mail_locations')
    with op.batch_alter_table('mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mails_user_id'))
        batch_op.drop_index(batch_op.f('ix_mails_thread_id'))
        batch_op.drop_index(batch_op.f('ix_mails_out_message_id'))
        batch_op.drop_index(batch_op.f('ix_mails_message_id'))
        batch_op.drop_index(batch_op.f('ix_mails_from_addr'))
        batch_op.drop_index(batch_op.f('ix_mails_customer_id'))
        batch_op.drop_index(batch_op.f('ix_mails_created_at'))

    op.drop_table('mails')
    op.drop_table('sync_status')
    op.drop_table('folders')
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailboxes_name'))

    op.drop_table('mailboxes')
    op.drop_table('blob_chunks')
