-- sessions FINAL with crm_id resolved through the identity graph: sessions of a visitor
-- from before it was linked, on every device of the customer, after merges. The
-- sessionizer's own value is kept as session_crm_id. Reports by customer read this.
CREATE VIEW IF NOT EXISTS {db}.resolved_sessions AS
SELECT
    s.* EXCEPT (crm_id),
    s.crm_id AS session_crm_id,
    multiIf(r.crm_id != '', r.crm_id, m.into_crm != '', m.into_crm, s.crm_id) AS crm_id
FROM {db}.sessions AS s FINAL
LEFT JOIN {db}.resolved_identities AS r ON s.site = r.site AND s.visitor_id = r.visitor_id
LEFT JOIN (SELECT site, from_crm, into_crm FROM {db}.crm_merges FINAL) AS m
    ON s.site = m.site AND s.crm_id = m.from_crm
SETTINGS join_use_nulls = 0
