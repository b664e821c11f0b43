-- The stock version (commerce/catalog.rs, store/products.rs `catalog_state`). Portable
-- (SQLite and PostgreSQL).
--
-- Orders take and give back stock without moving the catalog version. Every such write
-- now moves catalog_version.stock_version by one and stamps the rows it changed with the
-- new value, in its own transaction and after the rows themselves (so every writer takes
-- the catalog_version row last). A search reads both versions in one statement and, when
-- the stock version moved, only the rows stamped since the one its in-process index has:
-- the products' index answers the rest without reading their rows.
ALTER TABLE catalog_version ADD COLUMN stock_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN stock_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX products_stock_version ON products (stock_version);
