"""a row per delivery attempt, the purged attempts' totals, and the operators' actions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'delivery_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=255), nullable=False),
        sa.Column('outcome', sa.String(length=8), nullable=False),
        sa.Column('reply', sa.Text(), nullable=True),
        sa.Column('error_class', sa.String(length=64), nullable=True),
        sa.Column('refused_recipients', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['email_id'], ['emails.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_delivery_attempts_email_id_number', 'delivery_attempts', ['email_id', 'number']
    )
    op.create_index(
        'ix_delivery_attempts_finished_at_outcome', 'delivery_attempts', ['finished_at', 'outcome']
    )
    op.create_table(
        'purged_attempts',
        sa.Column('outcome', sa.String(length=8), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('outcome'),
    )
    op.create_table(
        'admin_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('target', sa.JSON(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_admin_actions_at', 'admin_actions', ['at'])


def downgrade():
    op.drop_index('ix_admin_actions_at', table_name='admin_actions')
    op.drop_table('admin_actions')
    op.drop_table('purged_attempts')
    op.drop_index('ix_delivery_attempts_finished_at_outcome', table_name='delivery_attempts')
    op.drop_index('ix_delivery_attempts_email_id_number', table_name='delivery_attempts')
    op.drop_table('delivery_attempts')
