"""index next_attempt_at and lease_expires_at only for the rows that wait or are being sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

WAITING = sa.text("status IN ('queued', 'retrying')")
SENDING = sa.text("status = 'sending'")


def upgrade():
    op.drop_index('ix_emails_status_next_attempt_at', table_name='emails')
    op.drop_index('ix_emails_status_lease_expires_at', table_name='emails')
    op.create_index(
        'ix_emails_waiting_next_attempt_at', 'emails', ['next_attempt_at'], unique=False,
        postgresql_where=WAITING, sqlite_where=WAITING,
    )
    op.create_index(
        'ix_emails_sending_lease_expires_at', 'emails', ['lease_expires_at'], unique=False,
        postgresql_where=SENDING, sqlite_where=SENDING,
    )


def downgrade():
    op.drop_index('ix_emails_sending_lease_expires_at', table_name='emails')
    op.drop_index('ix_emails_waiting_next_attempt_at', table_name='emails')
    op.create_index(
        'ix_emails_status_lease_expires_at', 'emails', ['status', 'lease_expires_at'], unique=False
    )
    op.create_index(
        'ix_emails_status_next_attempt_at', 'emails', ['status', 'next_attempt_at'], unique=False
    )
