"""index the unfinished emails by priority and id, for the sweeper's and the feed's top-up

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UNFINISHED = sa.text("status IN ('queued', 'retrying', 'sending')")


def upgrade():
    op.create_index(
        'ix_emails_unfinished_priority_id', 'emails', ['priority', 'id'], unique=False,
        postgresql_where=UNFINISHED, sqlite_where=UNFINISHED,
    )


def downgrade():
    op.drop_index('ix_emails_unfinished_priority_id', table_name='emails')
