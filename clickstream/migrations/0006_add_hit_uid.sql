-- The CRM id this hit itself carried (`uid`); crm_id is the visitor's id propagated to it.
ALTER TABLE {db}.hits ADD COLUMN IF NOT EXISTS uid String AFTER crm_id
