-- Commerce: orders with their priced lines, idempotency keys, avatars. Portable across
-- SQLite and PostgreSQL: text ids, integer millisecond times, integer cents.
CREATE TABLE orders (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('placed', 'cancelled')),
    total_cents  BIGINT NOT NULL CHECK (total_cents >= 0),
    currency     TEXT NOT NULL,
    street       TEXT NOT NULL,
    city         TEXT NOT NULL,
    postal_code  TEXT NOT NULL,
    country      TEXT NOT NULL,
    coupon_code  TEXT,
    created_at   BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX orders_user ON orders (user_id, created_at);
CREATE INDEX orders_created_at ON orders (created_at, id);

-- Lines copy the product's name and price at the time of the order; product_id has no
-- foreign key so a product can be deleted without rewriting order history.
CREATE TABLE order_items (
    order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          INTEGER NOT NULL,
    product_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    line_total_cents BIGINT NOT NULL CHECK (line_total_cents >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- One row per (user, key), claimed by a conditional insert before the request runs;
-- status and response are filled when it finishes (NULL while it is in flight).
CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          INTEGER,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- The current avatar of each account: a random file name inside $RAMPART_DATA_DIR/avatars.
CREATE TABLE avatars (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    file_name  TEXT NOT NULL,
    media_type TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
