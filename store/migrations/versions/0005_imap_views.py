"""the salespeople's IMAP views: each user's mailboxes, the UIDs of the mail in them, their
flags and placements, and the counter of changes to whose mail is whose

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 06:00:03.088327
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('view_epoch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute(sa.text("INSERT INTO view_epoch (id, epoch) VALUES (1, 0)"))
    op.create_table('imap_boxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid_next', sa.BigInteger(), nullable=False),
    sa.Column('highest_modseq', sa.BigInteger(), nullable=False),
    sa.Column('subscribed', sa.Boolean(), nullable=False),
    sa.Column('gone', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name')
    )
    with op.batch_alter_table('imap_boxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imap_boxes_user_id'), ['user_id'], unique=False)

    op.create_table('imap_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('modseq', sa.BigInteger(), nullable=False),
    sa.Column('expunged_modseq', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['box_id'], ['imap_boxes.id'], ),
    sa.ForeignKeyConstraint(['mail_id'], ['mails.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('box_id', 'uid')
    )
    with op.batch_alter_table('imap_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imap_entries_box_id'), ['box_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imap_entries_mail_id'), ['mail_id'], unique=False)

    op.create_table('imap_flags',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mails.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'mail_id')
    )
    op.create_table('imap_placements',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('box_id', sa.Integer(), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['box_id'], ['imap_boxes.id'], ),
    sa.ForeignKeyConstraint(['mail_id'], ['mails.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'mail_id')
    )


def downgrade() -> None:
    op.drop_table('imap_placements')
    op.drop_table('imap_flags')
    with op.batch_alter_table('imap_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imap_entries_mail_id'))
        batch_op.drop_index(batch_op.f('ix_imap_entries_box_id'))

    op.drop_table('imap_entries')
    with op.batch_alter_table('imap_boxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imap_boxes_user_id'))

    op.drop_table('imap_boxes')
    op.drop_table('view_epoch')
