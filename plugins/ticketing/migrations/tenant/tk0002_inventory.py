"""Ticketing: inventory places, reservations, orders, tickets and order history.

Every quota (and every event with a capacity) owns one ``inventory_places`` row per sellable
place; triggers keep that number equal to ``size - held`` (or ``capacity``) whatever code edits
the quota, and refuse a shrink that would take away places already reserved or sold.

Revision ID: tk0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "tk0002"
down_revision = "tk0001"
branch_labels = None
depends_on = None

# ``SET search_path FROM CURRENT`` pins the functions to the tenant schema the migration runs in.
_SYNC_POOL = """
CREATE FUNCTION inventory_sync_pool(p_pool uuid, p_event uuid, p_target integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    current_count integer;
    removed integer;
BEGIN
    -- Serialise resizes of one pool; buyers never take this lock.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_pool::text, 0));
    SELECT count(*) INTO current_count FROM inventory_places WHERE pool_id = p_pool;
    IF p_target > current_count THEN
        INSERT INTO inventory_places (pool_id, event_id)
        SELECT p_pool, p_event FROM generate_series(1, p_target - current_count);
    ELSIF p_target < current_count THEN
        WITH victims AS (
            SELECT id FROM inventory_places
            WHERE pool_id = p_pool AND order_id IS NULL AND held_until < now()
            LIMIT current_count - p_target
            FOR UPDATE SKIP LOCKED
        )
        DELETE FROM inventory_places WHERE id IN (SELECT id FROM victims);
        GET DIAGNOSTICS removed = ROW_COUNT;
        IF removed < current_count - p_target THEN
            RAISE EXCEPTION 'only % of % places are free: the rest are reserved or sold',
                removed, current_count - p_target
                USING ERRCODE = 'check_violation', CONSTRAINT = 'inventory_places_in_use';
        END IF;
    END IF;
END;
$$;
"""

_QUOTA_TRIGGER = """
CREATE FUNCTION inventory_quota_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM inventory_sync_pool(NEW.id, NEW.event_id, NEW.size - NEW.held);
    RETURN NULL;
END;
$$;
CREATE TRIGGER inventory_quota_changed AFTER INSERT OR UPDATE OF size, held ON quotas
FOR EACH ROW EXECUTE FUNCTION inventory_quota_changed();
CREATE FUNCTION inventory_quota_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM inventory_places WHERE pool_id = OLD.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER inventory_quota_deleted AFTER DELETE ON quotas
FOR EACH ROW EXECUTE FUNCTION inventory_quota_deleted();
"""

_EVENT_TRIGGER = """
CREATE FUNCTION inventory_event_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM inventory_sync_pool(NEW.id, NEW.id, coalesce(NEW.capacity, 0));
    RETURN NULL;
END;
$$;
CREATE TRIGGER inventory_event_changed AFTER INSERT OR UPDATE OF capacity ON events
FOR EACH ROW EXECUTE FUNCTION inventory_event_changed();
"""


def _uuid_pk() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "reservations",
        _uuid_pk(),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False, server_default=sa.false()),
        # How many places the reservation claimed across all pools, to check it still holds them all.
        sa.Column("place_count", sa.Integer(), nullable=False),
        _now("created_at"),
    )
    op.create_table(
        "reservation_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "reservation_id", sa.Uuid(), sa.ForeignKey("reservations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "ticket_type_id", sa.Uuid(), sa.ForeignKey("ticket_types.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("unit_tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_bp", sa.Integer(), nullable=False),
        sa.Column("tax_inclusive", sa.Boolean(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity"),
    )
    op.create_index("ix_reservation_lines_reservation_id", "reservation_lines", ["reservation_id"])
    op.create_table(
        "orders",
        _uuid_pk(),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="RESTRICT"), nullable=False),
        sa.Column(
            "reservation_id", sa.Uuid(), sa.ForeignKey("reservations.id", ondelete="SET NULL"), unique=True
        ),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_provider", sa.String(40), nullable=False),
        sa.Column("payment_due_at", sa.DateTime(timezone=True)),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "status IN ('reserved', 'awaiting_payment', 'paid', 'partially_refunded', 'refunded', "
            "'cancelled', 'expired')",
            name="ck_orders_status",
        ),
    )
    op.create_index("ix_orders_event_id", "orders", ["event_id"])
    op.create_index("ix_orders_email", "orders", [sa.text("lower(email)")])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_table(
        "tickets",
        _uuid_pk(),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "ticket_type_id", sa.Uuid(), sa.ForeignKey("ticket_types.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("attendee_name", sa.String(200)),
        sa.Column("attendee_email", sa.String(254)),
        sa.Column("valid", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        _now("created_at"),
    )
    op.create_index("ix_tickets_order_id", "tickets", ["order_id"])
    op.create_table(
        "order_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("from_status", sa.String(24)),
        sa.Column("to_status", sa.String(24)),
        sa.Column("actor", sa.String(200)),
        sa.Column("details", pg.JSONB(), nullable=False, server_default="{}"),
        _now("created_at"),
    )
    op.create_index("ix_order_history_order_id", "order_history", ["order_id"])
    op.create_table(
        "inventory_places",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        # A quota id, or an event id for the event's own capacity.
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        # Free when in the past; '-infinity' when never taken.
        sa.Column(
            "held_until", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("'-infinity'")
        ),
        sa.Column("reservation_id", sa.Uuid()),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="SET NULL")),
    )
    op.create_index(
        "ix_inventory_places_claimable",
        "inventory_places",
        ["pool_id", "held_until"],
        postgresql_where=sa.text("order_id IS NULL"),
    )
    op.create_index("ix_inventory_places_reservation_id", "inventory_places", ["reservation_id"])
    op.create_index("ix_inventory_places_order_id", "inventory_places", ["order_id"])
    op.execute(_SYNC_POOL)
    op.execute(_QUOTA_TRIGGER)
    op.execute(_EVENT_TRIGGER)
    # Quotas and capacities that exist already get their places.
    op.execute("SELECT inventory_sync_pool(id, event_id, size - held) FROM quotas")
    op.execute("SELECT inventory_sync_pool(id, id, capacity) FROM events WHERE capacity IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS inventory_event_changed ON events")
    op.execute("DROP TRIGGER IF EXISTS inventory_quota_deleted ON quotas")
    op.execute("DROP TRIGGER IF EXISTS inventory_quota_changed ON quotas")
    op.execute("DROP FUNCTION IF EXISTS inventory_quota_deleted()")
    op.execute("DROP FUNCTION IF EXISTS inventory_event_changed()")
    op.execute("DROP FUNCTION IF EXISTS inventory_quota_changed()")
    op.execute("DROP FUNCTION IF EXISTS inventory_sync_pool(uuid, uuid, integer)")
    for table in ("inventory_places", "order_history", "tickets", "orders", "reservation_lines", "reservations"):
        op.drop_table(table)
