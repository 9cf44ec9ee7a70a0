"""Ticketing: where the buyer of an order goes to pay it (a provider's hosted page), if anywhere.

Revision ID: tk0006
"""

import sqlalchemy as sa
from alembic import op

revision = "tk0006"
down_revision = "tk0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("payment_url", sa.Text()))


def downgrade() -> None:
    op.drop_column("orders", "payment_url")
