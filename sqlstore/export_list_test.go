package sqlstore

// TagsProbeSQL exposes the tag intersection probe to the EXPLAIN tests.
const TagsProbeSQL = tagsProbeSQL
