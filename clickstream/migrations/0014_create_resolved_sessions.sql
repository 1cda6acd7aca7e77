-- sessions FINAL with crm_id resolved through the identity graph: sessions of a visitor
-- from before it was linked, on every device of the customer, after merges. The
-- sessionizer's own value is kept as session_crm_id. Reports by customer read this.
-- GLOBAL JOIN: on a cluster the right side is computed once and sent to the shards.
CREATE VIEW IF NOT EXISTS {db}.resolved_sessions AS
SELECT
    s.* EXCEPT (crm_id),
    s.crm_id AS session_crm_id,
    multiIf(r.r_crm != '', r.r_crm, m.m_into != '', m.m_into, s.crm_id) AS crm_id
FROM {db}.sessions AS s FINAL
GLOBAL LEFT JOIN
(
    SELECT site AS r_site, visitor_id AS r_visitor, crm_id AS r_crm FROM {db}.resolved_identities
) AS r ON s.site = r.r_site AND s.visitor_id = r.r_visitor
GLOBAL LEFT JOIN
(
    SELECT site AS m_site, from_crm AS m_from, into_crm AS m_into FROM {db}.crm_merges FINAL
) AS m ON s.site = m.m_site AND s.crm_id = m.m_from
SETTINGS join_use_nulls = 0
