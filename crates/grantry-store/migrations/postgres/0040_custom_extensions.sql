-- Custom extensions (customCalloutExtension) defined in a catalog. The signing secret lives
-- in the body with the rest of the entity; it is never rendered after the create.

CREATE TABLE custom_extensions (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    catalog_id   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    modified_us  BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX custom_extensions_catalog ON custom_extensions (catalog_id);
