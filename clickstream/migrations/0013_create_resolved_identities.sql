-- One row per (site, visitor_id) ever linked: the CRM id it was last linked to, and the
-- customer it resolves to now (that CRM id, or the one it was merged into).
-- GLOBAL JOIN: on a cluster the right side is computed once and sent to the shards.
CREATE VIEW IF NOT EXISTS {db}.resolved_identities AS
SELECT
    i.site AS site,
    i.visitor_id AS visitor_id,
    i.crm_id AS linked_crm_id,
    if(m.m_into != '', m.m_into, i.crm_id) AS crm_id
FROM
(
    SELECT site, visitor_id, argMax(crm_id, (last_ts, version)) AS crm_id
    FROM {db}.identities FINAL
    GROUP BY site, visitor_id
) AS i
GLOBAL LEFT JOIN
(
    SELECT site AS m_site, from_crm AS m_from, into_crm AS m_into FROM {db}.crm_merges FINAL
) AS m ON i.site = m.m_site AND i.crm_id = m.m_from
SETTINGS join_use_nulls = 0
