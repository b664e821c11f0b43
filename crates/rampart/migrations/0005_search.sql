-- Catalog search (commerce/search_index.rs). Portable (SQLite and PostgreSQL).
--
-- search_text: the product's folded name and description (store/products.rs
-- `search_text`), computed by the server on every write, so that both backends search the
-- same text with the same case-sensitive LIKE, whatever their own LOWER() and locale do.
-- Rows written before this migration hold '' until the server fills them in, at its first
-- index build.
ALTER TABLE products ADD COLUMN search_text TEXT NOT NULL DEFAULT '';

-- The catalog version: moved in the same transaction as every admin write of a product
-- (create, change, delete; orders' stock changes do not move it), read by every search, so
-- each instance sees at once when its in-process index is behind the database.
CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);

INSERT INTO catalog_version (id, version) VALUES (1, 1);
