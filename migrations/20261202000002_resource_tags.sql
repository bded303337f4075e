-- Tags on state machines and activities (AWS's TagResource and friends): a key is unique per
-- resource, values may be empty. Deleting the resource deletes its tags.
CREATE TABLE resource_tags (
    resource_arn TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (resource_arn, tag_key)
) WITHOUT ROWID;
